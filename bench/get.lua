-- wrk script: authenticated GET with a purpose; DELAY_MS paces each connection (for the
-- "p99 at half the saturated rate" run).
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TOKEN") or "")
wrk.headers["X-Custodia-Purpose"] = "account_service"
local pause = tonumber(os.getenv("DELAY_MS") or "0")
function delay()
  return pause
end

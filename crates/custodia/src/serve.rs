//! `custodia serve`: plain HTTP on loopback, HTTPS (rustls) anywhere else.

use crate::{open_vault, ServeArgs};
use custodia_server::ServerConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub async fn run(args: ServeArgs) -> Result<(), String> {
    let cfg = args.config.load()?;
    crate::init_logging(cfg.log.as_deref());
    let listen = args
        .listen
        .clone()
        .or(cfg.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    let addr: SocketAddr = listen
        .parse()
        .map_err(|_| format!("listen address '{listen}' is not host:port"))?;
    let insecure = args.insecure_http || cfg.insecure_http.unwrap_or(false);
    let tls = match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        (None, None) => None,
        _ => return Err("set both tls_cert and tls_key, or neither".into()),
    };
    if tls.is_none() && !addr.ip().is_loopback() && !insecure {
        return Err(format!(
            "refusing to serve plain HTTP on non-loopback address {addr}: configure tls_cert and \
             tls_key, or pass --insecure-http if a TLS proxy sits in front"
        ));
    }

    if args.bench_unaudited && !args.dev {
        return Err(
            "--bench-unaudited (no audit events, for benchmarks) is allowed only with --dev".into(),
        );
    }
    let (vault, dev) = if args.dev {
        let d = crate::dev::setup(args.data_dir.clone(), args.dev_records).await?;
        (d.vault.clone(), Some(d))
    } else {
        (Arc::new(open_vault(&cfg).await?), None)
    };
    let server_cfg = ServerConfig {
        body_limit_bytes: cfg.body_limit_bytes.unwrap_or(1024 * 1024),
        request_timeout: Duration::from_secs(cfg.request_timeout_secs.unwrap_or(30)),
        bench_body_bytes: args.bench_body_bytes,
        auth: cfg.auth.clone().unwrap_or_default(),
        quotas: cfg.quotas.clone().unwrap_or_default(),
    };
    let engine = Arc::new(
        custodia_policy::Engine::load(cfg.policy_dir.as_deref())
            .map_err(|e| format!("policy pack: {e}"))?,
    );
    if let Some(d) = &dev {
        d.add_people(&vault, &server_cfg.auth).await?;
    }
    reload_on_sighup(engine.clone());
    if let Some(bytes) = args.bench_body_bytes {
        tracing::warn!(bytes,
            "benchmark routes on: GET /bench/constant and GET /bench/constant-audited answer without a token, and the latter appends an audit event (actor_kind \"benchmark\") per request");
    }
    let audit = custodia_server::audit::AuditLog::start(vault.clone())
        .await
        .map_err(|e| format!("audit log: {e}"))?;
    if let Some(us) = cfg.audit_commit_delay_us {
        audit.set_commit_delay(Duration::from_micros(us));
    }
    if args.bench_unaudited {
        audit.discard_events_for_benchmark();
    }
    let app = custodia_server::router(vault, engine, audit.clone(), &server_cfg);

    match tls {
        None => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            let local = listener.local_addr().map_err(|e| e.to_string())?;
            announce(&format!("http://{local}"), dev.as_ref());
            custodia_server::serve(listener, app, shutdown_signal())
                .await
                .map_err(|e| e.to_string())?;
        }
        Some((cert, key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let tls_cfg = axum_server::tls_rustls::RustlsConfig::from_pem_file(&cert, &key)
                .await
                .map_err(|e| format!("TLS certificate or key: {e}"))?;
            let handle = axum_server::Handle::new();
            let h = handle.clone();
            tokio::spawn(async move {
                shutdown_signal().await;
                h.graceful_shutdown(Some(Duration::from_secs(10)));
            });
            let server = axum_server::bind_rustls(addr, tls_cfg)
                .handle(handle.clone())
                .serve(app.into_make_service_with_connect_info::<SocketAddr>());
            let announce_handle = handle.clone();
            let dev_text = dev.as_ref().map(|d| d.describe());
            tokio::spawn(async move {
                if let Some(local) = announce_handle.listening().await {
                    println!("listening on https://{local}");
                    if let Some(text) = dev_text {
                        println!("{text}");
                    }
                }
            });
            server.await.map_err(|e| e.to_string())?;
        }
    }
    // A last signed tree head covers everything appended before shutdown.
    if let Err(e) = audit.sign_head().await {
        tracing::error!(target: "custodia::audit", error = %e, "no tree head signed at shutdown");
    }
    drop(dev);
    Ok(())
}

fn announce(url: &str, dev: Option<&crate::dev::Dev>) {
    println!("listening on {url}");
    if let Some(d) = dev {
        println!("{}", d.describe());
        let exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "custodia".into());
        println!(
            r#"try (as the customer-service agent, who sees masks):
  CODE=$({exe} totp --secret {secret})
  TOKEN=$(curl -s -H 'Content-Type: application/json' \
    -d '{{"username":"cs_agent","password":"{pw}","totp":"'$CODE'"}}' \
    {url}/v1/auth/login | sed 's/.*"token":"\([^"]*\)".*/\1/')
  curl -s -H "Authorization: Bearer $TOKEN" -H 'X-Custodia-Purpose: customer_service' \
    -H 'Content-Type: application/json' -d '{{"where":{{"mobile":"{mobile}"}}}}' \
    {url}/v1/collections/customers/search
"#,
            secret = d.totp_secret,
            pw = d.password,
            mobile = d.sample_mobile,
        );
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

/// `kill -HUP <pid>` re-reads the policy pack; a broken pack is logged and the running
/// one stays in force.
fn reload_on_sighup(engine: Arc<custodia_policy::Engine>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            match engine.reload() {
                Ok(n) => {
                    tracing::info!(target: "custodia::admin", policies = n, "policies reloaded (SIGHUP)")
                }
                Err(e) => {
                    tracing::error!(target: "custodia::admin", error = %e, "policy reload refused; the running pack stays")
                }
            }
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

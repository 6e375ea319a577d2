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
    };
    let app = custodia_server::router(vault, &server_cfg);

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
            let dev_ref = dev
                .as_ref()
                .map(|d| (d.token.clone(), d.dir_display.clone()));
            tokio::spawn(async move {
                if let Some(local) = announce_handle.listening().await {
                    println!("listening on https://{local}");
                    if let Some((token, dir)) = dev_ref {
                        println!("admin token: {token}\ndata dir: {dir}");
                    }
                }
            });
            server.await.map_err(|e| e.to_string())?;
        }
    }
    drop(dev);
    Ok(())
}

fn announce(url: &str, dev: Option<&crate::dev::Dev>) {
    println!("listening on {url}");
    if let Some(d) = dev {
        println!(
            "\nCustodia dev server: {} synthetic customers in collection 'customers'\n\
             data dir (throwaway, never use for real data): {}\n\
             admin token: {}\n\n\
             try:\n  curl -s -H 'Authorization: Bearer {}' -H 'X-Custodia-Purpose: account_service' \\\n    \
             -H 'Content-Type: application/json' -d '{{\"where\":{{\"mobile\":\"{}\"}}}}' {url}/v1/collections/customers/search\n",
            d.records, d.dir_display, d.token, d.token, d.sample_mobile
        );
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
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

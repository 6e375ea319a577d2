//! SQLite keeps the audit log in its own file; a log left in the main file by an earlier
//! version is moved over once, in order, heads included.

use custodia_store::AuditHeadRow;

#[tokio::test]
async fn audit_log_lives_in_its_own_file_and_old_logs_move_there() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("custodia.db");
    let url = format!("sqlite://{}", db.display());
    let audit = dir.path().join("custodia-audit.db");
    assert_eq!(custodia_store::audit_file(&db), audit);

    // A fresh store appends to the audit file, not to the main one.
    let store = custodia_store::open(&url).await.unwrap();
    assert_eq!(
        store.append_audit(&[b"{\"a\":0}".to_vec()]).await.unwrap(),
        0
    );
    assert!(audit.exists());
    drop(store);
    let main = sqlx::SqlitePool::connect(&url).await.unwrap();
    let in_main: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
        .fetch_one(&main)
        .await
        .unwrap();
    assert_eq!(in_main, 0);

    // The layout of an earlier version: the log in the main file, no audit file.
    for f in std::fs::read_dir(dir.path()).unwrap() {
        let p = f.unwrap().path();
        if p.to_string_lossy().contains("custodia-audit.db") {
            let _ = std::fs::remove_file(p);
        }
    }
    for seq in 0..7i64 {
        sqlx::query("INSERT INTO audit_events (seq, event) VALUES ($1, $2)")
            .bind(seq)
            .bind(format!("{{\"e\":{seq}}}").into_bytes())
            .execute(&main)
            .await
            .unwrap();
    }
    sqlx::query("INSERT INTO audit_heads VALUES (7, 'ab', 1, 'cd')")
        .execute(&main)
        .await
        .unwrap();

    let store = custodia_store::open(&url).await.unwrap();
    let events = store.audit_events(0, 100).await.unwrap();
    assert_eq!(events.len(), 7);
    assert!(events
        .iter()
        .enumerate()
        .all(|(i, (seq, e))| *seq == i as i64 && *e == format!("{{\"e\":{i}}}").into_bytes()));
    assert_eq!(
        store.audit_heads().await.unwrap(),
        vec![AuditHeadRow {
            tree_size: 7,
            root_hash: "ab".into(),
            timestamp_ms: 1,
            signature: "cd".into(),
        }]
    );
    // Appends continue after the moved events; the main file no longer holds them.
    assert_eq!(store.append_audit(&[b"{}".to_vec()]).await.unwrap(), 7);
    let in_main: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
        .fetch_one(&main)
        .await
        .unwrap();
    assert_eq!(in_main, 0);

    // An older binary still appending to the main file, with a different event at a
    // sequence number the audit file already has: the open stops, nothing is deleted.
    drop(store);
    sqlx::query("INSERT INTO audit_events (seq, event) VALUES (3, X'7b7d')")
        .execute(&main)
        .await
        .unwrap();
    let err = match custodia_store::open(&url).await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("opened despite a conflicting audit log"),
    };
    assert!(err.contains("differ at event 3"), "{err}");
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
        .fetch_one(&main)
        .await
        .unwrap();
    assert_eq!(kept, 1);
}

//! The private cluster starts, answers SQL with wal_level=logical, and is gone after drop.

use augur_pgcluster::PgCluster;

#[test]
fn private_cluster_starts_answers_and_cleans_up() {
    let cluster = PgCluster::start().expect("cluster starts");
    let out = cluster.psql("postgres", "SHOW wal_level").expect("psql");
    assert_eq!(out.trim(), "logical");
    let dir = cluster.data_dir().to_path_buf();
    assert!(dir.exists());
    drop(cluster);
    assert!(!dir.exists(), "data dir removed on drop");
}

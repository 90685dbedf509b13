use platform_acceptance::repo::GitopsRepo;
#[test]
fn dump() {
    let repo = GitopsRepo::load("fixtures/gitops").unwrap();
    let r = repo.render("apps").unwrap();
    for o in r.of_kind("StorageClass") { println!("{}", serde_json::to_string(&o.value).unwrap()); }
    let v = repo.variables("apps").unwrap();
    println!("{:?}", v.get("CEPH_STORAGE_CLASS"));
}

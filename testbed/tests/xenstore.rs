//! xenstore client, test daemon and policy sources, driven by the real
//! xenstore-utils commands (Debian's `xenstore-utils`, libxenstore) against
//! the test daemon, as a vif hotplug on a Xen host would see the store.

use std::io::Read;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::{Duration, Instant};

use filter_user::config::HostConfig;
use filter_user::policy::{Cidr, Cidr4, Cidr6, LinkLocal, MacAddr, Mode, PolicyError};
use filter_user::xen::sources::{Origin, SourceError, SourceKind, VifId, resolve};
use testbed::xenstored::TestXenstored;
use xenstore::{Access, Perms, Xenstore, XsError};

const BACKEND: &str = "/local/domain/0/backend/vif/5/0";
const DOM: &str = "/local/domain/5";
const MAC: &str = "00:16:3e:00:00:05";
const UUID: &str = "6a1f3c1e-0b4e-4d7b-9a42-3e6c0f1d2b77";
const XAPI: &str = "/xapi/6a1f3c1e-0b4e-4d7b-9a42-3e6c0f1d2b77/private/vif/0";
const RECORD: &str = "/local/domain/5/vm-data/networking/00163e000005";

fn vif() -> VifId {
    VifId::from_xenbus_path("backend/vif/5/0", 0).expect("valid XENBUS_PATH")
}

/// Runs a real xenstore-utils command as dom0; panics with its stderr.
fn xs(d: &TestXenstored, tool: &str, args: &[&str]) -> String {
    d.tool_ok(tool, args)
        .unwrap_or_else(|e| panic!("{e} (is Debian's xenstore-utils installed?)"))
}

fn write(d: &TestXenstored, path: &str, value: &str) {
    xs(d, "xenstore-write", &[path, value]);
}

fn chmod(d: &TestXenstored, path: &str, perms: &[&str]) {
    let mut args = vec![path];
    args.extend_from_slice(perms);
    xs(d, "xenstore-chmod", &args);
}

/// A domain and its vif as libxl lays them out: the guest's home owned by
/// dom0 and readable by the guest, the backend directory owned by the
/// backend (dom0) and readable by the guest, the guest's `data` directory
/// writable by the guest.
fn host(guests: &[u32]) -> TestXenstored {
    let d = TestXenstored::start_with_domains(guests);
    xs(
        &d,
        "xenstore-write",
        &[
            &format!("{DOM}/name"),
            "guest5",
            &format!("{DOM}/domid"),
            "5",
            &format!("{DOM}/data"),
            "",
            &format!("{BACKEND}/mac"),
            MAC,
            &format!("{BACKEND}/bridge"),
            "xenbr0",
            &format!("{BACKEND}/frontend"),
            "/local/domain/5/device/vif/0",
            &format!("{BACKEND}/frontend-id"),
            "5",
        ],
    );
    xs(&d, "xenstore-chmod", &["-r", DOM, "n0", "r5"]);
    xs(&d, "xenstore-chmod", &["-r", &format!("{DOM}/data"), "n5"]);
    xs(&d, "xenstore-chmod", &["-r", BACKEND, "n0", "r5"]);
    d
}

fn resolve_with(
    d: &TestXenstored,
    config: &HostConfig,
) -> Result<filter_user::xen::sources::Resolved, SourceError> {
    let mut c = d.client().expect("connect to the test daemon");
    resolve(&mut c, &vif(), config)
}

fn resolved(d: &TestXenstored) -> filter_user::xen::sources::Resolved {
    resolve_with(d, &HostConfig::default()).unwrap_or_else(|e| panic!("resolve: {e}"))
}

fn failure(d: &TestXenstored) -> SourceError {
    match resolve_with(d, &HostConfig::default()) {
        Ok(r) => panic!("expected an error, resolved {}", r.describe()),
        Err(e) => e,
    }
}

fn v4(s: &str) -> Cidr4 {
    s.parse().expect("IPv4")
}

fn v6(s: &str) -> Cidr6 {
    s.parse().expect("IPv6")
}

fn xenstore_origin(p: &str) -> Origin {
    Origin::Xenstore(p.to_string())
}

// ---------------------------------------------------------------- client

#[test]
fn client_and_real_tools_agree() {
    let d = TestXenstored::start();
    let mut c = d.client().expect("connect");
    // Written by the real tool, read by the client.
    write(&d, "/vifguard-test/a", "192.0.2.1");
    assert_eq!(
        c.read_string("/vifguard-test/a").expect("read"),
        "192.0.2.1"
    );
    // Written by the client, read by the real tools.
    c.write("/vifguard-test/b/c", b"hello world")
        .expect("write");
    assert_eq!(
        xs(&d, "xenstore-read", &["/vifguard-test/b/c"]).trim(),
        "hello world"
    );
    assert_eq!(xs(&d, "xenstore-list", &["/vifguard-test"]), "a\nb\n");
    assert_eq!(c.directory("/vifguard-test").expect("dir"), vec!["a", "b"]);
    assert!(c.exists("/vifguard-test/b").expect("exists"));
    // Values may hold any byte, including NUL.
    c.write("/vifguard-test/bin", b"x\0y")
        .expect("write binary");
    assert_eq!(c.read("/vifguard-test/bin").expect("read binary"), b"x\0y");
    // Missing nodes.
    let e = c.read("/vifguard-test/missing").expect_err("missing");
    assert!(
        matches!(&e, XsError::NotFound { path } if path == "/vifguard-test/missing"),
        "{e}"
    );
    assert_eq!(
        c.read_opt("/vifguard-test/missing").expect("read_opt"),
        None
    );
    let out = d
        .tool("xenstore-exists", &["/vifguard-test/missing"])
        .expect("run");
    assert!(!out.status.success());
    // mkdir keeps values, rm removes subtrees.
    c.mkdir("/vifguard-test/a").expect("mkdir existing");
    assert_eq!(
        c.read_string("/vifguard-test/a").expect("read"),
        "192.0.2.1"
    );
    c.mkdir("/vifguard-test/d/e").expect("mkdir");
    assert_eq!(c.read("/vifguard-test/d/e").expect("read"), b"");
    c.rm("/vifguard-test/b").expect("rm");
    assert!(!c.exists("/vifguard-test/b/c").expect("exists"));
    xs(&d, "xenstore-rm", &["/vifguard-test/d"]);
    assert_eq!(
        c.directory("/vifguard-test").expect("dir"),
        vec!["a", "bin"]
    );
    // Invalid paths are refused before anything is sent.
    assert!(matches!(
        c.read("relative/path"),
        Err(XsError::InvalidPath(_))
    ));
    assert!(matches!(c.read("/a//b"), Err(XsError::InvalidPath(_))));
}

#[test]
fn permissions_roundtrip_with_xenstore_chmod() {
    let d = TestXenstored::start();
    let mut c = d.client().expect("connect");
    write(&d, "/vifguard-test/p", "v");
    chmod(&d, "/vifguard-test/p", &["n0", "r5", "b7"]);
    let p = c.get_perms("/vifguard-test/p").expect("get_perms");
    assert_eq!(p.owner, 0);
    assert_eq!(p.default, Access::None);
    assert_eq!(p.to_string(), "n0 r5 b7");
    assert_eq!(p.access_for(5), Access::Read);
    assert_eq!(p.access_for(7), Access::Both);
    assert_eq!(p.access_for(9), Access::None);
    // Set by the client, shown by xenstore-ls -p.
    c.set_perms(
        "/vifguard-test/p",
        &"r3 w5".parse::<Perms>().expect("perms"),
    )
    .expect("set_perms");
    let ls = xs(&d, "xenstore-ls", &["-p", "/vifguard-test"]);
    assert!(ls.contains("(r3,w5)"), "{ls}");
    // Children inherit their parent's permissions.
    c.write("/vifguard-test/p/child", b"x")
        .expect("write child");
    assert_eq!(
        c.get_perms("/vifguard-test/p/child")
            .expect("perms")
            .to_string(),
        "r3 w5"
    );
    // Recursive chmod.
    xs(&d, "xenstore-chmod", &["-r", "/vifguard-test", "n0"]);
    assert_eq!(
        c.get_perms("/vifguard-test/p/child")
            .expect("perms")
            .to_string(),
        "n0"
    );
}

#[test]
fn guest_connections_get_c_xenstored_permissions() {
    let d = host(&[5]);
    // The guest reads its home (r5) but cannot write there (owner dom0).
    assert_eq!(
        d.tool_as(5, "xenstore-read", &["name"])
            .expect("guest read")
            .trim(),
        "guest5"
    );
    assert!(d.tool_as(5, "xenstore-write", &["name", "evil"]).is_err());
    assert!(
        d.tool_as(
            5,
            "xenstore-write",
            &[&format!("{BACKEND}/ip"), "0.0.0.0/0"]
        )
        .is_err()
    );
    // It may write its data directory, and owns what it creates there.
    d.tool_as(5, "xenstore-write", &["data/foo", "bar"])
        .expect("guest write");
    let mut c = d.client().expect("connect");
    assert_eq!(
        c.get_perms(&format!("{DOM}/data/foo"))
            .expect("perms")
            .owner,
        5
    );
    // Unreadable nodes are refused.
    write(&d, "/secret", "x");
    let out = d.tool_as(5, "xenstore-read", &["/secret"]);
    assert!(out.is_err());
}

#[test]
fn transactions_commit_abort_and_conflict() {
    let d = TestXenstored::start();
    let mut a = d.client().expect("connect");
    let mut b = d.client().expect("connect");
    a.transaction_start().expect("start");
    a.write("/vifguard-test/t", b"1").expect("write in tx");
    assert_eq!(
        b.read_opt("/vifguard-test/t").expect("read"),
        None,
        "not visible before commit"
    );
    a.transaction_end(true).expect("commit");
    assert_eq!(b.read("/vifguard-test/t").expect("read"), b"1");

    a.transaction_start().expect("start");
    a.write("/vifguard-test/t", b"2").expect("write in tx");
    a.transaction_end(false).expect("abort");
    assert_eq!(b.read("/vifguard-test/t").expect("read"), b"1");

    a.transaction_start().expect("start");
    a.write("/vifguard-test/t", b"3").expect("write in tx");
    b.write("/vifguard-test/other", b"x")
        .expect("intervening write");
    assert!(matches!(a.transaction_end(true), Err(XsError::Conflict)));
    assert_eq!(b.read("/vifguard-test/t").expect("read"), b"1");
}

#[test]
fn large_directories_use_directory_part() {
    let d = TestXenstored::start();
    let mut args = Vec::new();
    for i in 0..400 {
        args.push(format!("/vifguard-test/big/child-with-a-long-name-{i:04}"));
        args.push("x".to_string());
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    xs(&d, "xenstore-write", &refs);
    let mut c = d.client().expect("connect");
    let names = c.directory("/vifguard-test/big").expect("directory");
    assert_eq!(names.len(), 400);
    assert_eq!(names[399], "child-with-a-long-name-0399");
    let list = xs(&d, "xenstore-list", &["/vifguard-test/big"]);
    assert_eq!(list.lines().count(), 400);
    assert!(
        d.daemon()
            .requests()
            .iter()
            .any(|r| r.op == "DIRECTORY_PART")
    );
}

#[test]
fn xenstore_watch_sees_changes() {
    let d = TestXenstored::start();
    let mut child = std::process::Command::new("xenstore-watch")
        .args(["-n", "3", "/vifguard-test/w"])
        .env("XENSTORED_PATH", d.socket_path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("xenstore-watch (xenstore-utils)");
    // The watch fires once when set up; wait for it to be registered.
    let start = Instant::now();
    while !d.daemon().requests().iter().any(|r| r.op == "WATCH") {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "xenstore-watch never registered"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    write(&d, "/vifguard-test/w/a", "1");
    xs(&d, "xenstore-rm", &["/vifguard-test/w"]);
    let status = child.wait().expect("xenstore-watch exits after 3 events");
    assert!(status.success());
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    assert_eq!(
        out,
        "/vifguard-test/w\n/vifguard-test/w/a\n/vifguard-test/w\n"
    );
}

#[test]
fn oversized_requests_are_refused() {
    let d = TestXenstored::start();
    let big = "a".repeat(5000);
    let out = d
        .tool("xenstore-write", &["/vifguard-test/huge", &big])
        .expect("run");
    assert!(
        !out.status.success(),
        "a value over 4096 bytes cannot be written"
    );
    let mut c = d.client().expect("connect");
    let e = c
        .write("/vifguard-test/huge", big.as_bytes())
        .expect_err("too large");
    assert!(matches!(e, XsError::TooLarge { .. }), "{e}");
    assert!(e.to_string().contains("/vifguard-test/huge"), "{e}");
}

#[test]
fn hung_daemon_times_out_with_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("vifguard-hung-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let sock = dir.join("socket");
    let listener = UnixListener::bind(&sock).expect("bind");
    // Accept and never answer.
    let t = std::thread::spawn(move || {
        let conn = listener.accept();
        std::thread::sleep(Duration::from_millis(800));
        drop(conn);
    });
    let mut c = Xenstore::open_socket(&sock).expect("connect");
    c.set_timeout(Duration::from_millis(200)).expect("timeout");
    let start = Instant::now();
    let e = c.read(&format!("{BACKEND}/mac")).expect_err("no answer");
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(matches!(e, XsError::Timeout { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("did not answer READ") && msg.contains(&sock.display().to_string()),
        "{msg}"
    );
    let _ = t.join();
    let _ = std::fs::remove_dir_all(&dir);

    let e =
        Xenstore::open_socket(Path::new("/nonexistent/xenstored/socket")).expect_err("no daemon");
    assert!(
        e.to_string().contains("/nonexistent/xenstored/socket"),
        "{e}"
    );
}

// ---------------------------------------------------------------- sources

#[test]
fn xl_backend_keys() {
    let d = host(&[]);
    write(
        &d,
        &format!("{BACKEND}/ip"),
        "192.0.2.10 198.51.100.0/24 2001:db8::10",
    );
    write(&d, &format!("{BACKEND}/vifguard/mode"), "locked");
    write(
        &d,
        &format!("{BACKEND}/vifguard/ipv6"),
        "2001:db8:1::/64, 2001:db8::10",
    );
    write(
        &d,
        &format!("{BACKEND}/vifguard/options/ipv6_link_local"),
        "any",
    );
    write(&d, &format!("{BACKEND}/vifguard/options/dhcp_client"), "0");
    chmod(&d, BACKEND, &["n0", "r5"]);
    xs(&d, "xenstore-chmod", &["-r", BACKEND, "n0", "r5"]);
    let r = resolved(&d);
    assert_eq!(r.source, SourceKind::Xl);
    assert_eq!(r.bridge.as_deref(), Some("xenbr0"));
    let p = &r.policy;
    assert_eq!(p.mode, Mode::Locked);
    assert_eq!(p.mac, MAC.parse::<MacAddr>().expect("mac"));
    assert_eq!(p.ipv4, vec![v4("192.0.2.10"), v4("198.51.100.0/24")]);
    assert_eq!(p.ipv6, vec![v6("2001:db8::10"), v6("2001:db8:1::/64")]);
    assert_eq!(p.options.link_local, LinkLocal::Any);
    assert!(!p.options.dhcp_client);
    assert!(p.options.egress_filter);
    let pr = &r.provenance;
    assert_eq!(
        pr.mode,
        vec![xenstore_origin(&format!("{BACKEND}/vifguard/mode"))]
    );
    assert_eq!(pr.mac, vec![xenstore_origin(&format!("{BACKEND}/mac"))]);
    assert_eq!(pr.ipv4, vec![xenstore_origin(&format!("{BACKEND}/ip"))]);
    assert_eq!(
        pr.ipv6,
        vec![
            xenstore_origin(&format!("{BACKEND}/ip")),
            xenstore_origin(&format!("{BACKEND}/vifguard/ipv6"))
        ]
    );
    assert_eq!(
        pr.options.ipv6_link_local,
        xenstore_origin(&format!("{BACKEND}/vifguard/options/ipv6_link_local"))
    );
    assert_eq!(pr.options.router, Origin::Default);
    let text = r.describe();
    assert!(
        text.contains("vif5.0") && text.contains("source xl"),
        "{text}"
    );
    assert!(text.contains(&format!("{BACKEND}/ip")), "{text}");
}

#[test]
fn xl_isolated_with_destinations() {
    let d = host(&[]);
    write(&d, &format!("{BACKEND}/ip"), "203.0.113.7");
    write(&d, &format!("{BACKEND}/vifguard/mode"), "isolated");
    write(
        &d,
        &format!("{BACKEND}/vifguard/destinations"),
        "198.51.100.0/24 2001:db8:2::/48",
    );
    xs(&d, "xenstore-chmod", &["-r", BACKEND, "n0", "r5"]);
    let r = resolved(&d);
    assert_eq!(r.policy.mode, Mode::Isolated);
    assert_eq!(
        r.policy.destinations,
        vec![
            "198.51.100.0/24".parse::<Cidr>().expect("cidr"),
            "2001:db8:2::/48".parse::<Cidr>().expect("cidr")
        ]
    );
    assert_eq!(
        r.provenance.destinations,
        vec![xenstore_origin(&format!("{BACKEND}/vifguard/destinations"))]
    );
}

#[test]
fn network_default_resolves_per_bridge() {
    let d = host(&[]);
    write(&d, &format!("{BACKEND}/ip"), "192.0.2.10");
    xs(&d, "xenstore-chmod", &["-r", BACKEND, "n0", "r5"]);
    let config = HostConfig::parse(
        "[network_default]\nmode = \"locked\"\n[network_default.bridges]\nxenbr0 = \"isolated\"\nxenbr9 = \"disabled\"\n",
        Path::new("/etc/vifguard/vifguard.toml"),
    )
    .expect("config");
    // No vifguard/mode: network_default, bridge xenbr0 listed.
    let r = resolve_with(&d, &config).expect("resolve");
    assert_eq!(r.policy.mode, Mode::Isolated);
    match r.provenance.mode.as_slice() {
        [Origin::HostConfig(k)] => assert_eq!(k.key, "network_default.bridges.xenbr0"),
        other => panic!("{other:?}"),
    }
    // A bridge the table does not list gets the default mode.
    write(&d, &format!("{BACKEND}/bridge"), "xenbr1");
    assert_eq!(
        resolve_with(&d, &config).expect("resolve").policy.mode,
        Mode::Locked
    );
    // Explicit network_default in xenstore, built-in defaults: unlocked.
    write(&d, &format!("{BACKEND}/vifguard/mode"), "network_default");
    let r = resolve_with(&d, &HostConfig::default()).expect("resolve");
    assert_eq!(r.policy.mode, Mode::Unlocked);
    assert_eq!(r.provenance.mode.len(), 2, "{:?}", r.provenance.mode);
    // XAPI's network_default goes through the same table.
    write(&d, &format!("{BACKEND}/bridge"), "xenbr9");
    write(&d, &format!("{DOM}/vm"), &format!("/vm/{UUID}"));
    write(&d, &format!("{XAPI}/locking-mode"), "network_default");
    let r = resolve_with(&d, &config).expect("resolve");
    assert_eq!(r.source, SourceKind::Xapi);
    assert_eq!(r.policy.mode, Mode::Disabled);
}

#[test]
fn xapi_private_keys() {
    let d = host(&[]);
    // xl keys present too: XAPI wins.
    write(&d, &format!("{BACKEND}/ip"), "203.0.113.99");
    write(&d, &format!("{DOM}/vm"), &format!("/vm/{UUID}"));
    write(&d, &format!("/vm/{UUID}/uuid"), UUID);
    write(&d, &format!("{XAPI}/locking-mode"), "locked");
    write(
        &d,
        &format!("{XAPI}/ipv4-allowed"),
        "192.0.2.10,198.51.100.0/24",
    );
    write(&d, &format!("{XAPI}/ipv6-allowed"), "2001:db8::10");
    write(&d, &format!("{XAPI}/bridge-MAC"), "fe:ff:ff:ff:ff:ff");
    xs(&d, "xenstore-chmod", &["-r", "/xapi", "n0"]);
    xs(&d, "xenstore-chmod", &["-r", DOM, "n0", "r5"]);
    let r = resolved(&d);
    assert_eq!(r.source, SourceKind::Xapi);
    assert_eq!(r.policy.mode, Mode::Locked);
    assert_eq!(r.policy.ipv4, vec![v4("192.0.2.10"), v4("198.51.100.0/24")]);
    assert_eq!(r.policy.ipv6, vec![v6("2001:db8::10")]);
    assert_eq!(
        r.provenance.ipv4,
        vec![xenstore_origin(&format!("{XAPI}/ipv4-allowed"))]
    );
    assert!(
        r.provenance
            .mode
            .contains(&xenstore_origin(&format!("{XAPI}/locking-mode")))
    );
    // Locked with empty lists (as xenopsd writes a locked VIF without
    // addresses): valid, nothing allowed.
    write(&d, &format!("{XAPI}/ipv4-allowed"), "");
    xs(&d, "xenstore-rm", &[&format!("{XAPI}/ipv6-allowed")]);
    let r = resolved(&d);
    assert!(r.policy.ipv4.is_empty() && r.policy.ipv6.is_empty());
    for (mode, want) in [("unlocked", Mode::Unlocked), ("disabled", Mode::Disabled)] {
        write(&d, &format!("{XAPI}/locking-mode"), mode);
        assert_eq!(resolved(&d).policy.mode, want);
    }
    // A VM without XAPI keys for this vif falls through to xl.
    xs(&d, "xenstore-rm", &[&format!("/xapi/{UUID}")]);
    let r = resolved(&d);
    assert_eq!(r.source, SourceKind::Xl);
    assert_eq!(r.policy.ipv4, vec![v4("203.0.113.99")]);
}

fn nova_record() -> String {
    format!(
        concat!(
            r#"{{"label": "public", "mac": "{}", "broadcast": "192.0.2.255", "#,
            r#""dns": ["192.0.2.53"], "gateway": "192.0.2.1", "gateway_v6": "2001:db8::1", "#,
            r#""ips": [{{"ip": "192.0.2.10", "netmask": "255.255.255.0", "enabled": "1", "gateway": "192.0.2.1"}}, "#,
            r#"{{"ip": "192.0.2.11", "netmask": "255.255.255.0", "enabled": "0", "gateway": "192.0.2.1"}}], "#,
            r#""ip6s": [{{"ip": "2001:db8::10", "netmask": 64, "enabled": "1", "gateway": "2001:db8::1"}}]}}"#
        ),
        MAC
    )
}

#[test]
fn openstack_vm_data_record_written_by_dom0() {
    let d = host(&[]);
    write(&d, &format!("{BACKEND}/ip"), "203.0.113.99");
    write(&d, RECORD, &nova_record());
    xs(
        &d,
        "xenstore-chmod",
        &["-r", &format!("{DOM}/vm-data"), "n0", "r5"],
    );
    let r = resolved(&d);
    assert_eq!(r.source, SourceKind::OpenStack);
    assert_eq!(r.policy.mode, Mode::Locked);
    assert_eq!(
        r.policy.ipv4,
        vec![v4("192.0.2.10")],
        "disabled entry skipped, xl ip ignored"
    );
    assert_eq!(r.policy.ipv6, vec![v6("2001:db8::10")]);
    assert_eq!(r.provenance.ipv4, vec![xenstore_origin(RECORD)]);
    // vifguard/mode in the backend overrides nova's implied locked.
    write(&d, &format!("{BACKEND}/vifguard/mode"), "isolated");
    assert_eq!(resolved(&d).policy.mode, Mode::Isolated);
    // nova keeps the MAC's case in the key: upper case matches too.
    xs(&d, "xenstore-rm", &[RECORD]);
    let upper = "/local/domain/5/vm-data/networking/00163E000005";
    write(&d, upper, &nova_record());
    xs(&d, "xenstore-chmod", &[upper, "n0", "r5"]);
    let r = resolved(&d);
    assert_eq!(r.provenance.ipv4, vec![xenstore_origin(upper)]);
    // XAPI keys win over the record.
    write(&d, &format!("{DOM}/vm"), &format!("/vm/{UUID}"));
    write(&d, &format!("{XAPI}/locking-mode"), "unlocked");
    xs(&d, "xenstore-chmod", &["-r", DOM, "n0", "r5"]);
    assert_eq!(resolved(&d).source, SourceKind::Xapi);
}

// ---------------------------------------------------------------- trust

fn assert_untrusted(e: &SourceError, node: &str, reason: &str) {
    match e {
        SourceError::Untrusted {
            node: n, reason: r, ..
        } => {
            assert_eq!(n, node, "{e}");
            assert!(r.contains(reason), "{e}");
        }
        other => panic!("expected Untrusted {node}, got {other}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains("vif5.0") && msg.contains(node) && msg.contains("fails closed"),
        "{msg}"
    );
}

#[test]
fn record_written_by_the_guest_is_rejected() {
    // As on XenServer hosts where vm-data is guest-writable: the guest
    // plants a record for its own MAC with the real tools, through its own
    // (unprivileged) connection.
    let d = host(&[5]);
    write(&d, &format!("{DOM}/vm-data"), "");
    chmod(&d, &format!("{DOM}/vm-data"), &["n5"]);
    let rec = nova_record().replace("192.0.2.10", "198.51.100.1");
    d.tool_as(
        5,
        "xenstore-write",
        &["vm-data/networking/00163e000005", &rec],
    )
    .expect("the guest writes its vm-data");
    let e = failure(&d);
    assert_untrusted(&e, RECORD, "owned by the guest (domain 5)");
}

#[test]
fn dom0_record_the_guest_may_write_is_rejected() {
    let d = host(&[]);
    write(&d, RECORD, &nova_record());
    xs(
        &d,
        "xenstore-chmod",
        &["-r", &format!("{DOM}/vm-data"), "n0", "r5"],
    );
    assert_eq!(
        resolved(&d).source,
        SourceKind::OpenStack,
        "trusted as written by dom0"
    );
    chmod(&d, RECORD, &["n0", "b5"]);
    assert_untrusted(&failure(&d), RECORD, "the guest (domain 5) may write it");
    chmod(&d, RECORD, &["b0"]);
    assert_untrusted(&failure(&d), RECORD, "default permission 'b'");
    chmod(&d, RECORD, &["w0", "r5"]);
    assert_untrusted(&failure(&d), RECORD, "default permission 'w'");
}

#[test]
fn guest_owned_or_writable_nodes_are_rejected() {
    let d = host(&[]);
    // A backend key the guest may write.
    write(&d, &format!("{BACKEND}/ip"), "0.0.0.0/0");
    chmod(&d, &format!("{BACKEND}/ip"), &["n0", "w5"]);
    assert_untrusted(
        &failure(&d),
        &format!("{BACKEND}/ip"),
        "the guest (domain 5) may write it",
    );
    chmod(&d, &format!("{BACKEND}/ip"), &["n0", "r5"]);
    assert_eq!(resolved(&d).policy.ipv4, vec![v4("0.0.0.0/0")]);
    // The MAC itself.
    chmod(&d, &format!("{BACKEND}/mac"), &["n5"]);
    assert_untrusted(
        &failure(&d),
        &format!("{BACKEND}/mac"),
        "owned by the guest",
    );
    chmod(&d, &format!("{BACKEND}/mac"), &["n0", "r5"]);
    // vifguard's own option keys.
    write(&d, &format!("{BACKEND}/vifguard/options/router"), "1");
    chmod(
        &d,
        &format!("{BACKEND}/vifguard/options/router"),
        &["n0", "b5"],
    );
    assert_untrusted(
        &failure(&d),
        &format!("{BACKEND}/vifguard/options/router"),
        "may write it",
    );
    xs(&d, "xenstore-rm", &[&format!("{BACKEND}/vifguard")]);
    // The vm pointer that leads to the XAPI keys, owned by the guest.
    write(&d, &format!("{DOM}/vm"), &format!("/vm/{UUID}"));
    write(&d, &format!("{XAPI}/locking-mode"), "unlocked");
    chmod(&d, &format!("{DOM}/vm"), &["n5"]);
    assert_untrusted(&failure(&d), &format!("{DOM}/vm"), "owned by the guest");
    chmod(&d, &format!("{DOM}/vm"), &["n0", "r5"]);
    // XAPI's key writable by another domain.
    chmod(&d, &format!("{XAPI}/locking-mode"), &["n0", "w9"]);
    assert_untrusted(
        &failure(&d),
        &format!("{XAPI}/locking-mode"),
        "domain 9 may write it",
    );
    chmod(&d, &format!("{XAPI}/locking-mode"), &["n0"]);
    assert_eq!(resolved(&d).policy.mode, Mode::Unlocked);
}

// ---------------------------------------------------------------- bad input

fn assert_bad(d: &TestXenstored, node: &str, want: &str) {
    let e = failure(d);
    let msg = filter_user::report::chain(&e);
    assert!(msg.contains("vif5.0"), "{msg}");
    assert!(msg.contains(node), "want node {node}: {msg}");
    assert!(msg.contains(want), "want {want:?}: {msg}");
}

#[test]
fn malformed_backend_keys() {
    let d = host(&[]);
    let mac = format!("{BACKEND}/mac");
    write(&d, &mac, "00:16:3e:00:00");
    assert_bad(&d, &mac, "invalid MAC address \"00:16:3e:00:00\"");
    write(&d, &mac, "01:00:5e:00:00:01");
    assert!(matches!(
        failure(&d),
        SourceError::BadValue {
            source: PolicyError::NonUnicastMac(_),
            ..
        }
    ));
    xs(&d, "xenstore-rm", &[&mac]);
    assert!(matches!(failure(&d), SourceError::Missing { node, .. } if node == mac));
    write(&d, &mac, MAC);

    let ip = format!("{BACKEND}/ip");
    write(&d, &ip, "192.0.2.10 192.0.2.300");
    assert_bad(&d, &ip, "\"192.0.2.300\"");
    write(&d, &ip, "192.0.2.10/24");
    assert_bad(&d, &ip, "host bits set (did you mean 192.0.2.0/24?)");
    write(&d, &ip, "2001:db8::/129");
    assert_bad(&d, &ip, "\"2001:db8::/129\"");
    write(&d, &ip, "example.org");
    assert_bad(&d, &ip, "\"example.org\"");
    write(&d, &ip, "192.0.2.10");

    let v6node = format!("{BACKEND}/vifguard/ipv6");
    write(&d, &v6node, "192.0.2.5");
    assert_bad(&d, &v6node, "invalid IPv6 address or prefix \"192.0.2.5\"");
    xs(&d, "xenstore-rm", &[&v6node]);

    let mode = format!("{BACKEND}/vifguard/mode");
    write(&d, &mode, "lockdown");
    assert_bad(&d, &mode, "unknown mode \"lockdown\"");
    xs(&d, "xenstore-rm", &[&mode]);

    let dest = format!("{BACKEND}/vifguard/destinations");
    write(&d, &dest, "198.51.100.0/24 nowhere");
    assert_bad(&d, &dest, "\"nowhere\"");
    xs(&d, "xenstore-rm", &[&dest]);

    let opt = format!("{BACKEND}/vifguard/options/ethertypes");
    write(&d, &opt, "0x88cc 0x0100");
    assert_bad(&d, &opt, "invalid EtherType \"0x0100\"");
    write(
        &d,
        &opt,
        "0x88cc 0x88b5 0x88b6 0x88b7 0x88b8 0x88b9 0x88ba 0x88bb 0x88bc",
    );
    assert_bad(&d, &opt, "too many ethertypes");
    xs(&d, "xenstore-rm", &[&opt]);
    let opt = format!("{BACKEND}/vifguard/options/egress_filtre");
    write(&d, &opt, "0");
    assert_bad(&d, &opt, "is not a vifguard option");
    xs(&d, "xenstore-rm", &[&opt]);
    let opt = format!("{BACKEND}/vifguard/options/ipv6_link_local");
    write(&d, &opt, "all");
    assert_bad(&d, &opt, "unknown ipv6_link_local value \"all\"");
    xs(&d, "xenstore-rm", &[&opt]);

    assert_eq!(resolved(&d).policy.ipv4, vec![v4("192.0.2.10")]);
}

#[test]
fn malformed_xapi_keys() {
    let d = host(&[]);
    let vm = format!("{DOM}/vm");
    write(&d, &vm, "/vm/not-a-uuid");
    assert_bad(&d, &vm, "is not a VM path");
    write(&d, &vm, &format!("/vm/{UUID}"));
    let mode = format!("{XAPI}/locking-mode");
    write(&d, &mode, "locked-down");
    assert_bad(&d, &mode, "unknown mode \"locked-down\"");
    write(&d, &mode, "locked");
    let v4node = format!("{XAPI}/ipv4-allowed");
    write(&d, &v4node, "192.0.2.10,2001:db8::1");
    assert_bad(
        &d,
        &v4node,
        "invalid IPv4 address or prefix \"2001:db8::1\"",
    );
    write(&d, &v4node, "192.0.2.10;192.0.2.11");
    assert_bad(&d, &v4node, "\"192.0.2.10;192.0.2.11\"");
    write(&d, &v4node, "192.0.2.10");
    let v6node = format!("{XAPI}/ipv6-allowed");
    write(&d, &v6node, "2001:db8::1,2001:db8::zz");
    assert_bad(&d, &v6node, "\"2001:db8::zz\"");
    // Address keys without a locking mode: an incomplete source (a vif
    // keeps its policy, a new one fails closed), never another source.
    xs(&d, "xenstore-rm", &[&mode]);
    write(&d, &v6node, "2001:db8::1");
    let e = failure(&d);
    assert!(e.is_transient(), "{e}");
    assert!(matches!(e, SourceError::Incomplete { node, .. } if node == mode));
}

#[test]
fn malformed_openstack_records() {
    let d = host(&[]);
    let cases: Vec<(String, &str)> = vec![
        (
            "{\"mac\": \"00:16:3e:00:00:05\", \"ips\": [".to_string(),
            "invalid JSON",
        ),
        ("not json at all".to_string(), "invalid JSON"),
        (
            nova_record().replace(MAC, "00:16:3e:00:00:99"),
            "is for MAC 00:16:3e:00:00:99, but the vif's backend",
        ),
        (
            nova_record().replace("192.0.2.10", "192.0.2.256"),
            "\"192.0.2.256\"",
        ),
        (
            nova_record().replace("2001:db8::10", "2001:db8::g"),
            "\"2001:db8::g\"",
        ),
        (
            nova_record().replace("\"ips\": [", "\"ips\": 7, \"x\": ["),
            "\"ips\" is not a list",
        ),
    ];
    for (rec, want) in cases {
        write(&d, RECORD, &rec);
        xs(
            &d,
            "xenstore-chmod",
            &["-r", &format!("{DOM}/vm-data"), "n0", "r5"],
        );
        assert_bad(&d, RECORD, want);
    }
    // Two records for the same MAC in different case.
    write(&d, RECORD, &nova_record());
    write(
        &d,
        "/local/domain/5/vm-data/networking/00163E000005",
        &nova_record(),
    );
    xs(
        &d,
        "xenstore-chmod",
        &["-r", &format!("{DOM}/vm-data"), "n0", "r5"],
    );
    let e = failure(&d);
    assert!(matches!(e, SourceError::Ambiguous { .. }), "{e}");
    assert!(e.to_string().contains(RECORD), "{e}");
}

#[test]
fn lists_are_bounded_by_the_store() {
    // The most addresses one xenstore value can hold (4096-byte payloads)
    // stay under vifguard's per-family bound: a full `ip` key resolves.
    let d = host(&[]);
    let mut list = Vec::new();
    let mut len = 0;
    'outer: for net in ["192.0.2", "198.51.100", "203.0.113"] {
        for h in 1..255 {
            let a = format!("{net}.{h}");
            if len + a.len() + 1 + BACKEND.len() + 4 > 4096 {
                break 'outer;
            }
            len += a.len() + 1;
            list.push(a);
        }
    }
    let value = list.join(" ");
    write(&d, &format!("{BACKEND}/ip"), &value);
    let r = resolved(&d);
    assert_eq!(r.policy.ipv4.len(), list.len());
    // One byte more than a payload holds is refused by the store itself.
    let too_long = format!("{value} 203.0.113.254 203.0.113.253");
    let out = d
        .tool("xenstore-write", &[&format!("{BACKEND}/ip"), &too_long])
        .expect("run");
    assert!(!out.status.success());
}

#[test]
fn daemon_binary_serves_the_real_tools() {
    use std::io::BufRead;
    let dir = std::env::temp_dir().join(format!("vifguard-xsbin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let sock = dir.join("socket");
    let guest = dir.join("socket-dom5");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vifguard-test-xenstored"))
        .arg("--domain-socket")
        .arg(format!("5={}", guest.display()))
        .arg(&sock)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn vifguard-test-xenstored");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("ready line");
    assert_eq!(line.trim(), "ready");
    let run = |socket: &Path, tool: &str, args: &[&str]| {
        testbed::xenstored::run_tool(socket, tool, args).expect("run xenstore-utils")
    };
    assert!(
        run(&sock, "xenstore-write", &["/local/domain/5/name", "g"])
            .status
            .success()
    );
    assert!(
        run(
            &sock,
            "xenstore-chmod",
            &["/local/domain/5/name", "n0", "r5"]
        )
        .status
        .success()
    );
    let out = run(&guest, "xenstore-read", &["name"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "g");
    assert!(
        !run(&guest, "xenstore-write", &["name", "x"])
            .status
            .success()
    );
    child.kill().expect("kill");
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Pipelined requests (one write, then every reply): each answer lands on
/// its own request, in order, errors included.
#[test]
fn pipelined_requests_get_their_own_replies() {
    use xenstore::MsgType;
    let d = TestXenstored::start();
    write(&d, &format!("{BACKEND}/mac"), MAC);
    write(&d, &format!("{BACKEND}/ip"), "192.0.2.9");
    chmod(&d, &format!("{BACKEND}/ip"), &["n0", "r5"]);
    let mut c = d.client().expect("connect");
    let mac = format!("{BACKEND}/mac");
    let ip = format!("{BACKEND}/ip");
    let missing = format!("{BACKEND}/bridge");
    let reqs = [
        (MsgType::Read, mac.as_str()),
        (MsgType::Read, missing.as_str()),
        (MsgType::GetPerms, ip.as_str()),
        (MsgType::Read, ip.as_str()),
        (MsgType::GetPerms, missing.as_str()),
    ];
    let replies = c.pipeline(&reqs).expect("pipeline");
    assert_eq!(replies.len(), 5);
    assert_eq!(replies[0].as_deref().expect("mac"), MAC.as_bytes());
    assert!(
        matches!(&replies[1], Err(e) if e.is_not_found()),
        "{:?}",
        replies[1]
    );
    let perms = Perms::from_wire(replies[2].as_deref().expect("perms")).expect("parse");
    assert_eq!(perms.to_string(), "n0 r5");
    assert_eq!(replies[3].as_deref().expect("ip"), b"192.0.2.9");
    assert!(
        matches!(&replies[4], Err(e) if e.is_not_found()),
        "{:?}",
        replies[4]
    );
    // The connection is still in step afterwards.
    assert_eq!(c.read(&mac).expect("read"), MAC.as_bytes());
}

/// Checks the requests the daemon got since the `before`-th: a read-only
/// transaction around (reads, permission requests, directory listings) =
/// `want`, sent in `writes` writes (the round trips, the unawaited
/// discard included). The daemon may still be answering the last request.
fn assert_round_trips(
    d: &TestXenstored,
    before: usize,
    want: (usize, usize, usize),
    writes: usize,
) {
    let total = want.0 + want.1 + want.2 + 2;
    let deadline = Instant::now() + Duration::from_secs(5);
    while d.daemon().requests().len() < before + total && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let reqs = d.daemon().requests()[before..].to_vec();
    let ops: Vec<&str> = reqs.iter().map(|q| q.op.as_str()).collect();
    let count = |op: &str| ops.iter().filter(|o| **o == op).count();
    assert_eq!(ops.first(), Some(&"TRANSACTION_START"), "{ops:?}");
    assert_eq!(ops.last(), Some(&"TRANSACTION_END"), "{ops:?}");
    assert_eq!(
        (count("READ"), count("GET_PERMS"), count("DIRECTORY")),
        want,
        "{ops:?}"
    );
    assert_eq!(ops.len(), total, "{ops:?}");
    let seen = reqs.iter().filter(|q| !q.followed_at_once).count();
    assert_eq!(seen, writes, "{reqs:?}");
}

/// An xl vif's policy costs two round trips to xenstored: the
/// transaction start and one pipelined batch (values and permissions of
/// the common nodes, the options and OpenStack directories); the read-only
/// transaction is then discarded without waiting for the answer. A node
/// read outside the batch would be one more round trip for every hotplug,
/// and shows here. The connection stays in step for the next vif (as in
/// `vifguard sync`): the unawaited answer is skipped.
#[test]
fn an_xl_vif_resolves_in_two_round_trips() {
    let d = host(&[]);
    write(&d, &format!("{BACKEND}/ip"), "192.0.2.9");
    let mut c = d.client().expect("connect to the test daemon");
    for _ in 0..2 {
        let before = d.daemon().requests().len();
        let r = resolve(&mut c, &vif(), &HostConfig::default()).expect("resolve");
        assert_eq!(r.source, SourceKind::Xl);
        assert_eq!(r.policy.ipv4, vec![v4("192.0.2.9/32")]);
        // The start, the batch, the discard.
        assert_round_trips(&d, before, (9, 9, 2), 3);
    }
    assert_eq!(c.transaction(), 0);
    assert_eq!(
        c.read(&format!("{BACKEND}/mac")).expect("read after"),
        MAC.as_bytes()
    );
}

/// A XAPI vif's policy costs one round trip more than an xl vif's: the
/// private directory is named by the VM uuid in the domain's `vm` node,
/// so a second pipelined batch fetches its three nodes, their
/// permissions and the directory. Read one by one they were six more
/// round trips per vif, which made a sync of thousands of XAPI vifs wait
/// on xenstored (BENCHMARKS.md).
#[test]
fn a_xapi_vif_resolves_in_three_round_trips() {
    let d = host(&[]);
    write(&d, &format!("{DOM}/vm"), &format!("/vm/{UUID}"));
    write(&d, &format!("{XAPI}/locking-mode"), "locked");
    write(&d, &format!("{XAPI}/ipv4-allowed"), "192.0.2.10");
    write(&d, &format!("{XAPI}/ipv6-allowed"), "2001:db8::10");
    xs(&d, "xenstore-chmod", &["-r", "/xapi", "n0"]);
    xs(&d, "xenstore-chmod", &["-r", DOM, "n0", "r5"]);
    let mut c = d.client().expect("connect to the test daemon");
    for _ in 0..2 {
        let before = d.daemon().requests().len();
        let r = resolve(&mut c, &vif(), &HostConfig::default()).expect("resolve");
        assert_eq!(r.source, SourceKind::Xapi);
        assert_eq!(r.policy.ipv4, vec![v4("192.0.2.10")]);
        assert_eq!(r.policy.ipv6, vec![v6("2001:db8::10")]);
        // The start, two batches, the discard.
        assert_round_trips(&d, before, (12, 12, 3), 4);
    }
}

/// Watches: the event xenstored fires at registration, one per change
/// below the path (made by the real xenstore-write), events that arrive
/// while a reply is awaited kept for later, and a quiet wait that ends.
#[test]
fn watch_events_arrive_in_order_and_none_is_lost() {
    let d = TestXenstored::start();
    let mut w = d.client().expect("connect");
    w.watch("/local/domain/0/backend/vif", "tok")
        .expect("watch");
    let first = w
        .next_event(Duration::from_secs(2))
        .expect("read")
        .expect("the registration event");
    assert_eq!(first.path, "/local/domain/0/backend/vif");
    assert_eq!(first.token, "tok");
    assert_eq!(w.next_event(Duration::from_millis(50)).expect("read"), None);

    write(&d, &format!("{BACKEND}/vifguard/mode"), "isolated");
    write(&d, "/local/domain/5/name", "not watched");
    // A request on the watching connection: the event that arrives
    // before its reply is kept.
    write(&d, &format!("{BACKEND}/ip"), "192.0.2.9");
    std::thread::sleep(Duration::from_millis(50));
    assert!(w.read_opt("/local/domain/5/name").expect("read").is_some());
    let mut paths = Vec::new();
    while let Some(e) = w.next_event(Duration::from_millis(200)).expect("read") {
        assert_eq!(e.token, "tok");
        paths.push(e.path);
    }
    // xenstore-write creates missing parents: their events may come too.
    let want = [format!("{BACKEND}/vifguard/mode"), format!("{BACKEND}/ip")];
    let seen: Vec<&String> = paths.iter().filter(|p| want.contains(p)).collect();
    assert_eq!(seen, want.iter().collect::<Vec<_>>(), "{paths:?}");
    assert!(!paths.iter().any(|p| p.ends_with("/name")), "{paths:?}");
}

//! Host policy files: per-VIF extras kept on the host, for toolstacks that
//! write no `vifguard/*` keys (XAPI / XCP-ng: xenopsd writes only its own
//! keys and recreates the backend directory at every plug).
//!
//! One TOML file per VIF in the host configuration's `policy_dir`
//! (default `/etc/vifguard/vifs`), named by the VIF's MAC with `.toml`:
//! `00-16-3e-12-34-56.toml`, `00:16:3e:12:34:56.toml` or
//! `00163e123456.toml`, in either case. Other names are ignored; two files
//! for the same MAC are an error. It is read at every apply (hotplug,
//! attach, sync, setup-vif-rules, watch), never cached:
//!
//! ```toml
//! mode = "isolated"                       # overrides the toolstack's mode
//! destinations = ["192.0.2.1", "2001:db8::/64"]
//! pairs = ["02:16:3e:00:07:09=192.0.2.9,2001:db8::9", "vrrp:7=192.0.2.100"]
//! dhcp_servers = ["192.0.2.1", "fe80::1"]
//! [options]
//! ipv6_link_local = "any"
//! ```
//!
//! `destinations`, `pairs` and `dhcp_servers` take an array of strings or
//! one string with the value of the xenstore key (whitespace-separated).
//!
//! # Trust
//!
//! The directory and the file must be owned by root and not writable by
//! group or others, and the file must be a regular file (a symbolic link is
//! refused): otherwise the vif fails closed, like a xenstore node a guest
//! could write. An untrusted directory fails every vif, since whoever can
//! write it can also delete a vif's file.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::net::IpAddr;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::{RawOptions, parse_ethertypes};
use crate::policy::{
    Cidr, LinkLocal, MacAddr, Mode, Pair, Vrrp, flood_pps, parse_dhcp_servers, parse_link_local,
    parse_mode, parse_pairs,
};
use crate::xen::vif::VifId;

use super::SourceError;
use super::lists::push_unique;

/// A larger file is no policy file (a few entries each bounded).
const MAX_FILE_BYTES: u64 = 1 << 20;

/// Options a host policy file sets; `None`: not set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileOptions {
    pub dhcp_client: Option<bool>,
    pub dhcp_server: Option<bool>,
    pub router: Option<bool>,
    pub ipv6_link_local: Option<LinkLocal>,
    pub egress_filter: Option<bool>,
    pub ethertypes: Option<Vec<u16>>,
    pub learn_dhcp: Option<bool>,
    pub flood_pps: Option<u32>,
}

/// A parsed host policy file; each field `None` when the file does not set
/// it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyFile {
    pub path: PathBuf,
    /// `Some(None)`: `network_default`.
    pub mode: Option<Option<Mode>>,
    pub destinations: Option<Vec<Cidr>>,
    pub pairs: Option<(Vec<Pair>, Vec<Vrrp>)>,
    pub dhcp_servers: Option<Vec<IpAddr>>,
    pub options: FileOptions,
}

/// A list as an array of strings, or one string with the xenstore key's
/// value.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawList {
    One(String),
    Many(Vec<String>),
}

impl RawList {
    fn joined(&self) -> String {
        match self {
            RawList::One(s) => s.clone(),
            RawList::Many(v) => v.join(" "),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    mode: Option<String>,
    destinations: Option<RawList>,
    pairs: Option<RawList>,
    dhcp_servers: Option<RawList>,
    options: Option<RawOptions>,
}

/// The MAC a file name is for: `<MAC>.toml` with the bytes separated by
/// `-` or `:`, or not at all, hex in either case.
pub fn mac_of_file_name(name: &str) -> Option<MacAddr> {
    let stem = name.strip_suffix(".toml")?;
    if !stem
        .bytes()
        .all(|b| b.is_ascii_hexdigit() || b == b'-' || b == b':')
    {
        return None;
    }
    if stem.len() == 12 && stem.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut m = [0u8; 6];
        for (i, byte) in m.iter_mut().enumerate() {
            *byte = u8::from_str_radix(stem.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        return Some(MacAddr(m));
    }
    stem.parse().ok()
}

/// The name vifguard suggests for `mac`'s file.
pub fn file_name(mac: MacAddr) -> String {
    format!("{}.toml", mac.to_string().replace(':', "-"))
}

/// The owner a policy file or directory must have: root. The crate's unit
/// tests, which need not run as root, accept their own files too.
fn trusted_owner() -> u32 {
    if cfg!(test) {
        crate::sys::fs::euid()
    } else {
        0
    }
}

/// Why a file or directory with this owner and mode is not trusted, or
/// `None` if it is: owned by root (or `trusted`), not writable by group or
/// others.
pub fn distrust(uid: u32, mode: u32, trusted: u32) -> Option<String> {
    let perms = mode & 0o7777;
    if uid != 0 && uid != trusted {
        Some(format!("owned by uid {uid}, not root (mode {perms:04o})"))
    } else if mode & 0o002 != 0 {
        Some(format!("every user may write it (mode {perms:04o})"))
    } else if mode & 0o020 != 0 {
        Some(format!("its group may write it (mode {perms:04o})"))
    } else {
        None
    }
}

fn check(vif: VifId, path: &Path, what: &'static str, md: &Metadata) -> Result<(), SourceError> {
    match distrust(md.uid(), md.mode(), trusted_owner()) {
        None => Ok(()),
        Some(reason) => Err(SourceError::UntrustedFile {
            vif,
            what,
            path: path.to_path_buf(),
            reason,
        }),
    }
}

/// Finds, checks and parses the policy file for `mac` in `dir`; `None`
/// when `dir` does not exist or holds no file for `mac`.
pub(crate) fn find(
    dir: &Path,
    vif: VifId,
    mac: MacAddr,
) -> Result<Option<PolicyFile>, SourceError> {
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SourceError::FileRead { vif, path, source }
    };
    let md = match std::fs::metadata(dir) {
        Ok(md) => md,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_err(dir)(e)),
    };
    if !md.is_dir() {
        return Err(read_err(dir)(io::Error::from(io::ErrorKind::NotADirectory)));
    }
    check(vif, dir, "directory", &md)?;
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err(dir))? {
        let entry = entry.map_err(read_err(dir))?;
        let name = entry.file_name();
        if name
            .to_str()
            .and_then(mac_of_file_name)
            .is_some_and(|m| m == mac)
        {
            found.push(entry.path());
        }
    }
    found.sort();
    let path = match found.as_slice() {
        [] => return Ok(None),
        [one] => one.clone(),
        many => {
            return Err(SourceError::AmbiguousFile {
                vif,
                mac,
                files: many
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    };
    // No symbolic links (their target's directory is not checked), and
    // no blocking on a FIFO named like a MAC.
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                SourceError::UntrustedFile {
                    vif,
                    what: "file",
                    path: path.clone(),
                    reason: "it is a symbolic link (vifguard reads regular files only)".into(),
                }
            } else {
                read_err(&path)(e)
            }
        })?;
    // The descriptor's own metadata: the file checked is the file read.
    let md = file.metadata().map_err(read_err(&path))?;
    if !md.is_file() {
        return Err(SourceError::UntrustedFile {
            vif,
            what: "file",
            path,
            reason: "not a regular file".into(),
        });
    }
    check(vif, &path, "file", &md)?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read_err(&path))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(SourceError::FileParse {
            vif,
            path,
            message: format!("larger than {MAX_FILE_BYTES} bytes"),
        });
    }
    parse(&text, &path, vif, mac).map(Some)
}

/// Parses the text of a policy file for the vif `vif` with MAC `mac`;
/// `path` names it in errors and provenance.
pub fn parse(text: &str, path: &Path, vif: VifId, mac: MacAddr) -> Result<PolicyFile, SourceError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|sp| text.bytes().take(sp.start).filter(|&b| b == b'\n').count() + 1);
        let message = e.message().trim().replace('\n', " ");
        SourceError::FileParse {
            vif,
            path: path.to_path_buf(),
            message: match line {
                Some(l) => format!("line {l}: {message}"),
                None => message,
            },
        }
    })?;
    let bad = |field: &str| {
        let field = field.to_string();
        move |source| SourceError::FileValue {
            vif,
            path: path.to_path_buf(),
            field,
            source,
        }
    };
    let mode = raw
        .mode
        .map(|m| parse_mode(&m))
        .transpose()
        .map_err(bad("mode"))?;
    let destinations = match raw.destinations {
        None => None,
        Some(list) => {
            let text = list.joined();
            let items: Vec<&str> = super::list_items(&text).collect();
            super::bounded(items.len(), "destinations").map_err(bad("destinations"))?;
            let mut out = Vec::new();
            for i in items {
                push_unique(&mut out, i.parse::<Cidr>().map_err(bad("destinations"))?);
            }
            Some(out)
        }
    };
    let pairs = raw
        .pairs
        .map(|l| parse_pairs(&l.joined(), mac))
        .transpose()
        .map_err(bad("pairs"))?;
    let dhcp_servers = raw
        .dhcp_servers
        .map(|l| parse_dhcp_servers(&l.joined()))
        .transpose()
        .map_err(bad("dhcp_servers"))?;
    let o = raw.options.unwrap_or_default();
    let ipv6_link_local = o
        .ipv6_link_local
        .map(|v| parse_link_local(&v))
        .transpose()
        .map_err(bad("options.ipv6_link_local"))?;
    let ethertypes = o
        .ethertypes
        .map(|list| parse_ethertypes(&list))
        .transpose()
        .map_err(bad("options.ethertypes"))?;
    let flood_pps = o
        .flood_pps
        .map(flood_pps)
        .transpose()
        .map_err(bad("options.flood_pps"))?;
    Ok(PolicyFile {
        path: path.to_path_buf(),
        mode,
        destinations,
        pairs,
        dhcp_servers,
        options: FileOptions {
            dhcp_client: o.dhcp_client,
            dhcp_server: o.dhcp_server,
            router: o.router,
            ipv6_link_local,
            egress_filter: o.egress_filter,
            ethertypes,
            learn_dhcp: o.learn_dhcp,
            flood_pps,
        },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const MAC: MacAddr = MacAddr([0x00, 0x16, 0x3e, 0x12, 0x34, 0x56]);

    fn vif() -> VifId {
        VifId::new(0, 5, 0)
    }

    fn p(text: &str) -> Result<PolicyFile, SourceError> {
        parse(text, Path::new("/test/vifs/x.toml"), vif(), MAC)
    }

    /// A fresh directory below the system's temporary one, mode 0755.
    fn tempdir(tag: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("vifguard-policy-file-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        d
    }

    fn write(path: &Path, text: &str, mode: u32) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn file_names_are_macs_as_operators_type_them() {
        for name in [
            "00-16-3e-12-34-56.toml",
            "00:16:3e:12:34:56.toml",
            "00:16:3E:12:34:56.toml",
            "00163e123456.toml",
            "00163E123456.toml",
        ] {
            assert_eq!(mac_of_file_name(name), Some(MAC), "{name}");
        }
        for name in [
            "00-16-3e-12-34-56.toml~",
            "00-16-3e-12-34-56.conf",
            "00-16-3e-12-34.toml",
            "00163e12345.toml",
            ".00-16-3e-12-34-56.toml.swp",
            "vm1.toml",
            " 00-16-3e-12-34-56.toml",
        ] {
            assert_eq!(mac_of_file_name(name), None, "{name}");
        }
        assert_eq!(file_name(MAC), "00-16-3e-12-34-56.toml");
    }

    #[test]
    fn the_trust_rule() {
        assert_eq!(distrust(0, 0o100644, 0), None);
        assert_eq!(distrust(0, 0o100600, 0), None);
        assert_eq!(distrust(1000, 0o100644, 1000), None);
        let r = distrust(1000, 0o100644, 0).unwrap();
        assert!(r.contains("uid 1000") && r.contains("0644"), "{r}");
        assert!(distrust(0, 0o100664, 0).unwrap().contains("group"));
        assert!(distrust(0, 0o100646, 0).unwrap().contains("every user"));
        assert!(distrust(0, 0o040777, 0).unwrap().contains("every user"));
    }

    #[test]
    fn a_full_file_parses() {
        let f = p(r#"
mode = "isolated"
destinations = ["192.0.2.1", "2001:db8::/64", "192.0.2.1"]
pairs = ["02:16:3e:00:07:09=192.0.2.9,2001:db8::9", "vrrp:7=192.0.2.100"]
dhcp_servers = "192.0.2.1 fe80::1"
[options]
dhcp_server = true
ipv6_link_local = "any"
ethertypes = ["0x88cc", 0x88b5]
learn_dhcp = true
flood_pps = 0
"#)
        .unwrap();
        assert_eq!(f.mode, Some(Some(Mode::Isolated)));
        assert_eq!(f.destinations.as_ref().map(Vec::len), Some(2));
        let (pairs, vrrp) = f.pairs.clone().unwrap();
        assert_eq!((pairs.len(), vrrp.len()), (1, 1));
        assert_eq!(f.dhcp_servers.as_ref().map(Vec::len), Some(2));
        assert_eq!(f.options.dhcp_server, Some(true));
        assert_eq!(f.options.dhcp_client, None);
        assert_eq!(f.options.ipv6_link_local, Some(LinkLocal::Any));
        assert_eq!(f.options.ethertypes, Some(vec![0x88cc, 0x88b5]));
        assert_eq!(f.options.learn_dhcp, Some(true));
        assert_eq!(f.options.flood_pps, Some(0));

        let empty = p("").unwrap();
        assert_eq!(empty.mode, None);
        assert_eq!(empty.pairs, None);
        assert_eq!(empty.options, FileOptions::default());
        assert_eq!(p("mode = \"network_default\"").unwrap().mode, Some(None));
        // An empty list is set: it overrides the host defaults.
        assert_eq!(p("dhcp_servers = []").unwrap().dhcp_servers, Some(vec![]));
    }

    #[test]
    fn the_shipped_example_parses() {
        let text = include_str!("../../../vifs.example.toml");
        let f = p(text).unwrap();
        assert_eq!(f.mode, Some(Some(Mode::Isolated)));
        assert!(f.pairs.is_some() && f.dhcp_servers.is_some() && f.destinations.is_some());
        // What it leaves commented out stays at the host's default.
        assert_eq!((f.options.learn_dhcp, f.options.flood_pps), (None, None));
    }

    #[test]
    fn errors_name_the_file_and_the_field() {
        let cases = [
            ("mode = \"open\"", "mode"),
            ("destinations = [\"192.0.2.1/24\"]", "destinations"),
            ("pairs = [\"02:16:3e:00:07:09\"]", "pairs"),
            ("pairs = \"vrrp:300=192.0.2.1\"", "pairs"),
            ("pairs = [\"00:16:3e:12:34:56=192.0.2.1\"]", "pairs"),
            ("dhcp_servers = [\"192.0.2.0/24\"]", "dhcp_servers"),
            (
                "[options]\nipv6_link_local = \"some\"",
                "options.ipv6_link_local",
            ),
            ("[options]\nethertypes = [\"0x0100\"]", "options.ethertypes"),
            ("[options]\nethertypes = [70000]", "options.ethertypes"),
            ("[options]\nflood_pps = 1000001", "options.flood_pps"),
            ("[options]\nflood_pps = -3", "options.flood_pps"),
        ];
        for (text, field) in cases {
            match p(text) {
                Err(e @ SourceError::FileValue { .. }) => {
                    let msg = crate::report::chain(&e);
                    assert!(
                        msg.contains("vif5.0")
                            && msg.contains("/test/vifs/x.toml")
                            && msg.contains(&format!(": {field} holds")),
                        "{text}: {msg}"
                    );
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        for text in [
            "mdoe = \"locked\"",
            "[options]\ndhcp = true",
            "[options]\nrouter = \"yes\"",
            "[options]\nlearn_dhcp = 1",
            "pairs = 7",
            "mode = ",
        ] {
            match p(text) {
                Err(e @ SourceError::FileParse { .. }) => {
                    let msg = e.to_string();
                    assert!(
                        msg.contains("/test/vifs/x.toml") && msg.contains("line "),
                        "{text}: {msg}"
                    );
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn find_checks_the_directory_and_the_file() {
        let d = tempdir("find");
        assert_eq!(find(&d.join("missing"), vif(), MAC).unwrap(), None);
        assert_eq!(find(&d, vif(), MAC).unwrap(), None);
        write(
            &d.join("00-16-3e-00-00-01.toml"),
            "mode = \"locked\"",
            0o644,
        );
        write(&d.join("README"), "not a policy", 0o644);
        assert_eq!(find(&d, vif(), MAC).unwrap(), None);

        let f = d.join("00-16-3e-12-34-56.toml");
        write(&f, "mode = \"isolated\"", 0o644);
        let got = find(&d, vif(), MAC).unwrap().unwrap();
        assert_eq!(got.path, f);
        assert_eq!(got.mode, Some(Some(Mode::Isolated)));

        for mode in [0o664, 0o666, 0o646] {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = find(&d, vif(), MAC).unwrap_err();
            assert!(
                matches!(&e, SourceError::UntrustedFile { what: "file", path, .. } if *path == f),
                "{mode:o}: {e}"
            );
            assert!(e.to_string().contains("fails closed"), "{e}");
        }
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(find(&d, vif(), MAC).unwrap().is_some());

        // A group-writable directory: every vif fails, with or without a file.
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o775)).unwrap();
        let e = find(&d, vif(), MAC).unwrap_err();
        assert!(
            matches!(
                e,
                SourceError::UntrustedFile {
                    what: "directory",
                    ..
                }
            ),
            "{e}"
        );
        let other = MacAddr([0x00, 0x16, 0x3e, 0, 0, 9]);
        assert!(find(&d, vif(), other).is_err());
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();

        // Two names for one MAC.
        write(&d.join("00163E123456.toml"), "", 0o644);
        let e = find(&d, vif(), MAC).unwrap_err();
        assert!(matches!(e, SourceError::AmbiguousFile { .. }), "{e}");
        std::fs::remove_file(d.join("00163E123456.toml")).unwrap();

        // A symbolic link, even to a good file.
        std::fs::remove_file(&f).unwrap();
        let target = d.join("target");
        write(&target, "", 0o644);
        std::os::unix::fs::symlink(&target, &f).unwrap();
        let e = find(&d, vif(), MAC).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        std::fs::remove_file(&f).unwrap();

        // A directory with a MAC name.
        std::fs::create_dir(&f).unwrap();
        assert!(find(&d, vif(), MAC).is_err());
        std::fs::remove_dir(&f).unwrap();

        // A malformed file names itself.
        write(&f, "pairs = [\"nonsense\"]", 0o644);
        let e = find(&d, vif(), MAC).unwrap_err();
        assert!(e.to_string().contains(&f.display().to_string()), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}

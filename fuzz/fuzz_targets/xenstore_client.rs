//! The xenstore wire decoder as the client runs it: a server (a thread on
//! a unix socket) answers with the input's bytes, as many replies and
//! watch events as they make, and the client makes requests of every kind
//! against that stream: headers, reply bodies, error replies, watch
//! events interleaved, permissions, directory listings. Any byte stream
//! gives answers or errors, never a panic or a hang. The header, string
//! and permission decoders are also run on the input directly.
#![no_main]

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use xenstore::{HEADER_LEN, Header, Perms, Xenstore, perms_reply, split_strings};

fn listener() -> &'static (UnixListener, PathBuf) {
    LISTENER.get_or_init(|| {
        // SAFETY: ignoring SIGPIPE, before any other thread writes.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        let path =
            std::env::temp_dir().join(format!("vifguard-fuzz-xs-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).expect("bind the fuzz socket");
        // libFuzzer ends the process with exit(): remove the socket then.
        // SAFETY: registering a function that only unlinks a file.
        unsafe { libc::atexit(remove_socket) };
        (l, path)
    })
}

extern "C" fn remove_socket() {
    if let Some((_, path)) = LISTENER.get() {
        let _ = std::fs::remove_file(path);
    }
}

static LISTENER: OnceLock<(UnixListener, PathBuf)> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    if data.len() >= HEADER_LEN {
        let mut h = [0u8; HEADER_LEN];
        h.copy_from_slice(&data[..HEADER_LEN]);
        let _ = Header::decode(&h);
    }
    let _ = split_strings(data);
    let _ = Perms::from_wire(data);
    let _ = perms_reply("/local/domain/5", data);

    let (l, path) = listener();
    let Ok(mut client) = Xenstore::open_socket(path) else {
        return;
    };
    let Ok((mut server, _)) = l.accept() else {
        return;
    };
    let bytes = data.to_vec();
    let peer = std::thread::spawn(move || {
        let _ = server.write_all(&bytes);
        let _ = server.shutdown(std::net::Shutdown::Write);
        let mut sink = [0u8; 4096];
        while matches!(server.read(&mut sink), Ok(n) if n > 0) {}
    });
    let _ = client.set_timeout(Duration::from_millis(200));
    let _ = client.watch("/local/domain/0/backend/vif", "tok");
    let _ = client.read("/local/domain/5/vm");
    let _ = client.directory("/local/domain/0/backend/vif/5/0");
    let _ = client.get_perms("/local/domain/0/backend/vif/5/0/mac");
    let _ = client.next_event(Duration::from_millis(0));
    let _ = client.transaction_start();
    let _ = client.read_opt("/xapi");
    let _ = client.next_event(Duration::from_millis(0));
    drop(client);
    let _ = peer.join();
    let _: Option<UnixStream> = None;
});

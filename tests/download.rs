//! The download path against a loopback HTTP server serving an archive the test builds:
//! verified by MD5 before use, unpacked, loadable; a wrong checksum or a 404 leaves nothing.
#![allow(clippy::disallowed_methods)] // tests, benches and examples may panic

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use augwise::data::download::{download, fetch_verified, md5_file, Archive, Resource};
use augwise::data::{load_cifar10, DataError};

/// Serve `files` (path → bytes) on 127.0.0.1 until `requests` answers have been sent.
fn serve(files: Vec<(String, Vec<u8>)>, requests: usize) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            reader.read_line(&mut line).unwrap();
            // Drain the headers.
            let mut h = String::new();
            while reader.read_line(&mut h).map(|n| n > 2).unwrap_or(false) {
                h.clear();
            }
            counter.fetch_add(1, Ordering::SeqCst);
            let path = line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_owned();
            match files.iter().find(|(p, _)| *p == path) {
                Some((_, body)) => {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(body);
                }
                None => {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                }
            }
        }
    });
    (base, hits)
}

fn cifar_archive() -> Vec<u8> {
    let src = tempfile::tempdir().unwrap();
    common::write_cifar10(&src.path().join("cifar-10-batches-bin"), 4);
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    tar.append_dir_all("cifar-10-batches-bin", src.path().join("cifar-10-batches-bin"))
        .unwrap();
    tar.into_inner().unwrap().finish().unwrap()
}

fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest;
    md5::Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

#[test]
fn downloads_verifies_unpacks_and_skips_the_second_time() {
    let archive_bytes = cifar_archive();
    let md5 = leak(md5_hex(&archive_bytes));
    let (base, hits) = serve(vec![("cifar-10-binary.tar.gz".into(), archive_bytes)], 4);
    let archive = Archive {
        name: "cifar10",
        base_url: "http://unused.invalid/",
        resources: Box::leak(Box::new([Resource {
            file: "cifar-10-binary.tar.gz",
            md5,
        }])),
        extract: true,
    };
    let dir = tempfile::tempdir().unwrap();
    let out = download(&archive, Some(&base), dir.path()).unwrap();
    let s = load_cifar10(&out).unwrap();
    assert_eq!((s.train.len(), s.test.len()), (20, 4));
    assert_eq!(md5_file(&dir.path().join("cifar-10-binary.tar.gz")).unwrap(), md5);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    // Already there with the right checksum: no second request.
    download(&archive, Some(&base), dir.path()).unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[test]
fn wrong_checksum_and_missing_file_leave_nothing_behind() {
    let (base, _) = serve(vec![("f.gz".into(), b"tampered bytes".to_vec())], 2);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("f.gz");
    let e = fetch_verified(&format!("{base}f.gz"), &dest, "00000000000000000000000000000000").unwrap_err();
    assert!(matches!(e, DataError::Checksum { .. }), "{e}");
    assert!(e.to_string().contains("expected md5 0000"), "{e}");
    assert!(!dest.exists() && !dest.with_extension("part").exists());

    let e = fetch_verified(&format!("{base}missing.gz"), &dir.path().join("m.gz"), "x").unwrap_err();
    assert!(matches!(e, DataError::Download { .. }), "{e}");
    assert!(e.to_string().contains("404"), "{e}");
}

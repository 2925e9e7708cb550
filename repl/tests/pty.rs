//! The interactive REPL driven through a real pseudo-terminal, as a person at a keyboard drives
//! it: Tab completion, Ctrl-C during a long step (the step is cancelled, the session is as
//! before it, the prompt comes back), Ctrl-C at an empty prompt (does not quit) and Ctrl-D
//! (quits cleanly). The child gets the pty as its controlling terminal, so Ctrl-C typed while
//! a step runs reaches it as SIGINT exactly as in a terminal emulator.
#![allow(clippy::disallowed_methods)] // tests, benches and examples may panic
#![cfg(unix)]

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

struct Pty {
    child: Child,
    master: File,
    output: Receiver<Vec<u8>>,
    /// Everything the terminal has shown so far, escape sequences included.
    seen: String,
    /// Where the last expected text ended: the next `expect` looks after it.
    cursor: usize,
}

impl Pty {
    fn spawn(args: &[&str], dir: &std::path::Path) -> Pty {
        let (mut master, mut slave) = (-1, -1);
        let size = libc::winsize {
            ws_row: 40,
            ws_col: 160,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two fresh descriptors; the pointers are valid for the call.
        let rc = unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), &size) };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened and are owned here alone.
        let (master, slave) = unsafe { (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_augwise"));
        cmd.args(args)
            .env("TERM", "xterm-256color")
            .env("AUGWISE_HISTORY", dir.join("history"))
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: only async-signal-safe calls between fork and exec: a new session whose
        // controlling terminal is the pty (stdin), so the line discipline sends SIGINT on ^C.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn augwise on a pty");
        let mut reader = master.try_clone().unwrap();
        let (tx, output) = channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once the child has gone and the slave is closed: that ends the thread.
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Pty {
            child,
            master,
            output,
            seen: String::new(),
            cursor: 0,
        }
    }

    fn send(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
        self.master.flush().unwrap();
    }

    /// Wait until the terminal shows `needle` after the last match; answer rustyline's
    /// cursor-position query the way a terminal emulator does.
    fn expect_within(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.seen[self.cursor..].find(needle) {
                self.cursor += i + needle.len();
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {needle:?}; the terminal showed:\n{}",
                self.seen
            );
            if let Ok(chunk) = self.output.recv_timeout(left.min(Duration::from_millis(100))) {
                let text = String::from_utf8_lossy(&chunk).into_owned();
                for _ in 0..text.matches("\x1b[6n").count() {
                    self.send("\x1b[1;1R");
                }
                self.seen.push_str(&text);
            }
        }
    }

    fn expect(&mut self, needle: &str) {
        self.expect_within(needle, Duration::from_secs(60))
    }

    fn wait(mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the REPL did not exit; it showed:\n{}",
                self.seen
            );
            while let Ok(chunk) = self.output.try_recv() {
                self.seen.push_str(&String::from_utf8_lossy(&chunk));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const TINY: &str = "config data=synthetic:kind=frequency,classes=3,n=24,size=16 batch_size=8 trajectories=2 finetune_epochs=1 pretrain_epochs=20000\r";

#[test]
fn tab_completes_commands_stages_and_op_names() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let mut t = Pty::spawn(&["--run-dir", run_dir.to_str().unwrap(), "repl"], dir.path());
    t.expect("Ctrl-D leaves");
    t.expect("> ");

    // One candidate: the word is completed in place.
    t.send("expl\t");
    t.expect("explain");
    t.send(" upd\t");
    t.expect("update");
    t.send("\r");
    t.expect("π_new(k) / π_old(k)");

    // Op names inside a policy spec.
    t.send("probe pair:Inver\t");
    t.expect("pair:Invert");
    // Ctrl-U clears the line; completion of a command name as an argument of `help`.
    t.send("\x15help pre\t");
    t.expect("pretrain");
    t.send("\x15plot ");
    t.send("ma\t");
    t.expect("marginals");
    t.send("\x15\x04");
    t.expect("bye");
    assert!(t.wait().success());
    // The history file keeps what was run, for the next session's hints and arrow keys.
    let history = std::fs::read_to_string(dir.path().join("history")).unwrap();
    assert!(history.contains("explain update"), "{history}");
}

#[test]
fn ctrl_c_cancels_a_running_step_and_ctrl_d_quits() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let mut t = Pty::spawn(
        &["--run-dir", run_dir.to_str().unwrap(), "--preset", "cpu", "repl"],
        dir.path(),
    );
    t.expect("Ctrl-D leaves");
    t.send(TINY);
    t.expect("trajectories = 2");
    t.expect("[resnet20 · synthetic · not started]> ");

    // Ctrl-C at an empty prompt: a note, no exit.
    t.send("\x03");
    t.expect("Ctrl-D or `quit` leaves");

    t.send("pretrain 1\r");
    t.expect_within("stage 1: 1 of 20000 epochs done", Duration::from_secs(120));
    t.expect("> ");

    // A long step; Ctrl-C once its progress shows.
    t.send("pretrain 10000\r");
    t.expect("%");
    t.send("\x03");
    t.expect("cancelled; the session is as it was before this step");
    // The session is exactly as before the step: one epoch of stage 1 done.
    t.send("history\r");
    t.expect("stage 1: 1 epochs");

    // Control keys only once the prompt is back: between commands the terminal is in cooked
    // mode, where Ctrl-D is no byte at all but an end-of-file no one is reading.
    t.expect("update 0]> ");
    t.send("\x04");
    t.expect("bye");
    let status = t.wait();
    assert!(status.success(), "{status:?}");
}

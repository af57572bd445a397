//! The harness: a real Linux kernel under qemu (software emulation), booted with an initramfs
//! that this test writes: a static busybox, the test build's `svcd` and `svc`, and whatever
//! files a test adds. The VM's `/init` mounts what svcd needs (proc, sysfs, devtmpfs, cgroup2,
//! tmpfs on /tmp and /run), runs the test's script and prints a marker line with its exit status
//! on the serial console, which qemu writes to its stdout; then it powers the VM off.
//!
//! Where the kernel comes from: `SVC_TEST_VM_KERNEL` (a bzImage), else the cache directory that
//! `contrib/vm/fetch-kernel.sh` fills (`${XDG_CACHE_HOME:-$HOME/.cache}/svc-test-vm/vmlinuz`;
//! `.ci/run` runs it). Without qemu, a static busybox or a kernel, a test prints `SKIPPED: why`
//! and passes, unless `SVC_TEST_NO_SKIP` is set (CI), where it fails. `SVC_TEST_VM_BINS` names
//! a directory whose `svcd` and `svc` the VM runs instead of the test build's (a release build).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const SVCD: &str = env!("CARGO_BIN_EXE_svcd");
pub const SVC: &str = env!("CARGO_BIN_EXE_svc");

/// Where [`Vm::unit`] puts unit files in the VM.
pub const UNITS: &str = "/svc/units";

/// The line `/init` prints after the test's script, followed by its exit status.
pub const MARKER: &str = "SVC-VM-EXIT";

/// A whole boot, from qemu's start to the VM's power-off, may take this long at most (software
/// emulation on a loaded machine: a boot alone takes 2–5 s).
pub const VM_DEADLINE: Duration = Duration::from_secs(50);

/// From the marker line to the VM's power-off, at most.
const POWER_OFF_DEADLINE: Duration = Duration::from_secs(15);

/// What `/init` does before the test's script: the file systems svcd and the tests need.
const PRELUDE: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/usr/local/bin:/bin
mkdir -p /proc /sys /dev /tmp /run
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
exec </dev/null >/dev/console 2>&1
"#;

/// Skips the calling test, visibly (`SKIPPED: why`), or fails it where `SVC_TEST_NO_SKIP` is
/// set (CI: `.ci/run` installs what these tests need).
pub fn skip(why: &str) {
    assert!(
        std::env::var_os("SVC_TEST_NO_SKIP").is_none(),
        "this test cannot run here: {why} (SVC_TEST_NO_SKIP is set: nothing may be skipped)"
    );
    eprintln!("SKIPPED: {why}");
}

/// One file of the initramfs.
struct Entry {
    path: String,
    mode: u32,
    data: Vec<u8>,
}

/// A VM to boot: the kernel, qemu and the files of its initramfs.
pub struct Vm {
    qemu: PathBuf,
    kernel: PathBuf,
    files: Vec<Entry>,
    dir: tempfile::TempDir,
    /// The VM's CPUs (1 unless a test asks for more).
    cpus: u32,
    /// How long a boot may take at most ([`VM_DEADLINE`] unless a test asks for more).
    deadline: Duration,
}

/// What a boot printed and how the test's script ended.
#[derive(Debug)]
pub struct Boot {
    /// Everything on the serial console.
    pub console: String,
    /// The script's exit status, from the marker line; `None` if it never printed one.
    pub status: Option<i32>,
    /// How long the VM ran.
    pub took: Duration,
}

impl Boot {
    /// Panics with the console unless the script exited 0 and the VM powered off cleanly.
    pub fn assert_ok(&self) {
        assert_eq!(
            self.status,
            Some(0),
            "the VM's script failed; its console:\n{}",
            self.console
        );
        self.assert_powered_off();
    }

    /// Panics unless the kernel powered the VM off (not a panic: its init exited).
    pub fn assert_powered_off(&self) {
        assert!(
            !self.console.contains("Kernel panic"),
            "the VM's init died; its console:\n{}",
            self.console
        );
        assert!(
            self.console.contains("reboot: Power down"),
            "the VM was not powered off; its console:\n{}",
            self.console
        );
    }

    /// The value of the console line `KEY=VALUE` the script printed (the last one).
    pub fn value(&self, key: &str) -> Option<&str> {
        self.console.lines().rev().find_map(|line| {
            line.trim_end_matches('\r')
                .strip_prefix(key)?
                .strip_prefix('=')
        })
    }
}

impl Vm {
    /// A VM with busybox (`/bin`), svcd and svc (`/usr/local/bin`, before busybox's own `svc` applet) in its initramfs, or why there can be none
    /// here (the test then skips).
    pub fn new() -> Result<Vm, String> {
        let qemu = find_in_path("qemu-system-x86_64")
            .ok_or("no qemu-system-x86_64 (Debian: apt-get install qemu-system-x86)")?;
        let kernel = kernel()?;
        let busybox = find_in_path("busybox")
            .filter(|b| is_static(b))
            .or_else(|| Some(PathBuf::from("/bin/busybox")).filter(|b| is_static(b)))
            .ok_or("no static busybox (Debian: apt-get install busybox-static)")?;
        let dir = tempfile::Builder::new()
            .prefix("svc-test-vm-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let mut vm = Vm {
            qemu,
            kernel,
            files: Vec::new(),
            dir,
            cpus: 1,
            deadline: VM_DEADLINE,
        };
        vm.host_file("/bin/busybox", &busybox)?;
        // Another build's binaries (e.g. target/.../release) where SVC_TEST_VM_BINS names their
        // directory: a release-only fault shows there.
        let bins = std::env::var_os("SVC_TEST_VM_BINS").map(PathBuf::from);
        let (svcd, svc) = match &bins {
            Some(dir) => (dir.join("svcd"), dir.join("svc")),
            None => (PathBuf::from(SVCD), PathBuf::from(SVC)),
        };
        vm.binary("/usr/local/bin/svcd", &svcd)?;
        vm.binary("/usr/local/bin/svc", &svc)?;
        Ok(vm)
    }

    /// The test's temp dir on the host (removed with the VM).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Boots with `cpus` CPUs: the kernel takes some shortcuts on a machine of one (an RCU
    /// grace period, for one).
    pub fn cpus(&mut self, cpus: u32) -> &mut Vm {
        self.cpus = cpus;
        self
    }

    /// Lets a boot take up to `deadline` (a measurement that runs longer than a test).
    pub fn deadline(&mut self, deadline: Duration) -> &mut Vm {
        self.deadline = deadline;
        self
    }

    /// Adds `data` as `path` (absolute, in the VM) with permissions `mode`.
    pub fn file(&mut self, path: &str, data: impl Into<Vec<u8>>, mode: u32) -> &mut Vm {
        self.files.push(Entry {
            path: path.trim_start_matches('/').to_string(),
            mode,
            data: data.into(),
        });
        self
    }

    /// Adds the host's file `from` as `path`, executable.
    pub fn host_file(&mut self, path: &str, from: &Path) -> Result<&mut Vm, String> {
        let data = std::fs::read(from).map_err(|e| format!("read {}: {e}", from.display()))?;
        Ok(self.file(path, data, 0o755))
    }

    /// Adds the executable `from` as `path`, without its debug sections where `strip` is
    /// there (a debug build of svcd is 70 MB, which the VM's 512 MiB would hold in RAM).
    fn binary(&mut self, path: &str, from: &Path) -> Result<&mut Vm, String> {
        let stripped = self
            .dir
            .path()
            .join(path.trim_start_matches('/').replace('/', "_"));
        let done = Command::new("strip")
            .arg("--strip-debug")
            .arg("-o")
            .arg(&stripped)
            .arg(from)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let data = std::fs::read(if done { &stripped } else { from })
            .map_err(|e| format!("read {}: {e}", from.display()))?;
        let _ = std::fs::remove_file(&stripped);
        Ok(self.file(path, data, 0o755))
    }

    /// Adds unit `name` (TOML `text`) to [`UNITS`].
    pub fn unit(&mut self, name: &str, text: &str) -> &mut Vm {
        self.file(
            &format!("{UNITS}/{name}.toml"),
            text.as_bytes().to_vec(),
            0o644,
        )
    }

    /// Boots with `/init` running `script` (busybox sh, after [`PRELUDE`]) and then printing
    /// [`MARKER`] with its status and powering off.
    pub fn run(&mut self, script: &str) -> Boot {
        self.file("/test.sh", script.as_bytes().to_vec(), 0o755);
        // The script's status kept before the newline's `echo`, whose own `$?` (0) it was.
        let init = format!(
            "{PRELUDE}sh -e /test.sh\nstatus=$?\necho; echo \"{MARKER} $status\"\nsync\npoweroff -f\n"
        );
        self.boot(&init)
    }

    /// Boots with `/init` being `init` as it is (a busybox sh script, after [`PRELUDE`]), e.g.
    /// one that ends by exec'ing svcd as PID 1.
    pub fn boot_init(&mut self, init: &str) -> Boot {
        self.boot(&format!("{PRELUDE}{init}"))
    }

    fn boot(&mut self, init: &str) -> Boot {
        self.file("/init", init.as_bytes().to_vec(), 0o755);
        let image = self.dir.path().join("initramfs.cpio");
        std::fs::write(&image, newc(&self.files)).expect("write the initramfs");
        // One VM per core at a time: software emulation takes a core each, and more VMs than
        // cores only stretch every boot towards its deadline. The deadline counts from here.
        let _slot = Slot::take();
        let start = Instant::now();
        let child = Command::new(&self.qemu)
            .args(["-accel", "tcg", "-cpu", "max", "-m", "512", "-smp"])
            .arg(self.cpus.to_string())
            .args([
                "-nographic",
                "-no-reboot",
                "-nodefaults",
                "-serial",
                "stdio",
            ])
            .arg("-kernel")
            .arg(&self.kernel)
            .arg("-initrd")
            .arg(&image)
            .args(["-append", "console=ttyS0 quiet panic=-1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn qemu");
        let mut qemu = Qemu(child);
        let (tx, rx) = mpsc::channel();
        for pipe in [
            qemu.0
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
            qemu.0
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).split(b'\n').map_while(Result::ok) {
                    if tx
                        .send(String::from_utf8_lossy(&line).into_owned())
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let mut console = String::new();
        let mut status = None;
        let mut deadline = self.deadline;
        loop {
            let left = deadline.saturating_sub(start.elapsed());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let line = line.trim_end_matches('\r');
                    // Anywhere in the line: the firmware's escape sequences may precede it.
                    if let Some((_, code)) = line.split_once(MARKER) {
                        status = code.trim().parse().ok();
                        // From the script's end, the power-off takes a moment.
                        deadline = deadline.min(start.elapsed() + POWER_OFF_DEADLINE);
                    }
                    console.push_str(line);
                    console.push('\n');
                }
                // Both pipes closed: qemu has exited.
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!(
                        "the VM still ran after {:?}; its console:\n{console}",
                        start.elapsed()
                    );
                }
            }
        }
        let _ = qemu.0.wait();
        let took = start.elapsed();
        eprintln!("note: the VM ran {took:.1?} (deadline {:?})", self.deadline);
        Boot {
            console,
            status,
            took,
        }
    }
}

/// qemu, killed when dropped (a test that fails or times out leaves no VM running).
struct Qemu(Child);

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The kernel to boot: `SVC_TEST_VM_KERNEL`, else the cache's, or why there is none.
fn kernel() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("SVC_TEST_VM_KERNEL") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "SVC_TEST_VM_KERNEL={} is not a file",
                path.display()
            ))
        };
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .ok_or("neither SVC_TEST_VM_KERNEL nor HOME is set")?;
    let path = cache.join("svc-test-vm/vmlinuz");
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "no kernel: set SVC_TEST_VM_KERNEL or run contrib/vm/fetch-kernel.sh (fills {})",
            path.display()
        ))
    }
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|path| path.is_file())
}

/// Whether the 64-bit ELF file at `path` has no program interpreter (`PT_INTERP` among its
/// program headers): it is statically linked.
fn is_static(path: &Path) -> bool {
    let Ok(data) = std::fs::read(path) else {
        return false;
    };
    let number = |at: usize, len: usize| -> Option<usize> {
        let bytes = data.get(at..at + len)?;
        Some(bytes.iter().rev().fold(0, |n, b| n << 8 | usize::from(*b)))
    };
    if !data.starts_with(b"\x7fELF\x02\x01") {
        return false;
    }
    let (Some(offset), Some(size), Some(count)) =
        (number(0x20, 8), number(0x36, 2), number(0x38, 2))
    else {
        return false;
    };
    (0..count).all(|i| number(offset + i * size, 4).is_some_and(|kind| kind != 3))
}

/// `entries` as an uncompressed newc cpio archive (what the kernel unpacks as its initramfs),
/// with the directories they need made first.
fn newc(entries: &[Entry]) -> Vec<u8> {
    let mut dirs: Vec<String> = Vec::new();
    for entry in entries {
        for dir in Path::new(&entry.path).ancestors().skip(1) {
            let dir = dir.to_string_lossy().into_owned();
            if !dir.is_empty() && !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    dirs.sort_by_key(|d| d.matches('/').count());
    let mut out = Vec::new();
    let mut ino = 1;
    for dir in &dirs {
        record(&mut out, ino, dir, 0o040_755, &[]);
        ino += 1;
    }
    for entry in entries {
        record(
            &mut out,
            ino,
            &entry.path,
            0o100_000 | entry.mode,
            &entry.data,
        );
        ino += 1;
    }
    record(&mut out, 0, "TRAILER!!!", 0, &[]);
    out
}

/// One newc record: a 110-byte header of hex fields, the name and the data, each padded to 4.
fn record(out: &mut Vec<u8>, ino: u32, name: &str, mode: u32, data: &[u8]) {
    let fields = [
        ino,
        mode,
        0,
        0,
        1,
        0,
        u32::try_from(data.len()).expect("a file under 4 GiB"),
        0,
        0,
        0,
        0,
        u32::try_from(name.len() + 1).expect("a short name"),
        0,
    ];
    out.extend_from_slice(b"070701");
    for field in fields {
        out.extend_from_slice(format!("{field:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad(out);
    out.extend_from_slice(data);
    pad(out);
}

fn pad(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// A VM with each of `programs` (`tests/vm/NAME.c`) built statically into it as `/NAME`;
/// `None` (skipped) without a VM or a C compiler that links statically.
pub fn vm_with_c_programs(programs: &[&str]) -> Option<Vm> {
    let mut vm = vm_or_skip()?;
    for name in programs {
        let out = vm.dir().join(name);
        let source = format!("{}/tests/vm/{name}.c", env!("CARGO_MANIFEST_DIR"));
        let built = Command::new("cc")
            .args(["-static", "-O2", "-o"])
            .arg(&out)
            .arg(&source)
            .status()
            .is_ok_and(|s| s.success());
        if !built {
            skip(&format!("cannot build {source} statically (cc -static)"));
            return None;
        }
        vm.host_file(&format!("/{name}"), &out).ok()?;
    }
    Some(vm)
}

/// Which of the tests' skips applies: a VM, or why not (printed as `SKIPPED`).
pub fn vm_or_skip() -> Option<Vm> {
    match Vm::new() {
        Ok(vm) => Some(vm),
        Err(why) => {
            skip(&why);
            None
        }
    }
}

/// A turn to run a VM: at most one per core at once (the test harness runs the tests in
/// parallel threads); given back when dropped.
struct Slot;

static SLOTS: std::sync::Mutex<usize> = std::sync::Mutex::new(0);
static FREED: std::sync::Condvar = std::sync::Condvar::new();

impl Slot {
    fn take() -> Slot {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let mut running = SLOTS.lock().unwrap_or_else(|p| p.into_inner());
        while *running >= cores {
            running = FREED.wait(running).unwrap_or_else(|p| p.into_inner());
        }
        *running += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut running = SLOTS.lock().unwrap_or_else(|p| p.into_inner());
        *running -= 1;
        FREED.notify_one();
    }
}

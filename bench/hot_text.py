#!/usr/bin/env python3
"""Writes src/bin/svc.ld and src/bin/svcd.ld: the functions that `svc status` runs, and those
svcd runs to answer it, each placed side by side.

    bench/hot_text.py          (needs valgrind and gdb: apt-get install -y valgrind gdb)

`svc status` is a whole process each time (scripts and probes run it in loops), and most of its
cost is the kernel's: mapping the binary, a page fault for each 64 KiB window of code it touches
(the kernel maps the pages around a fault), and unmapping it all at exit. The linker lays
functions out in the order the compiler emits them, so the 150 KB or so that `svc status` runs
lay over 27 such windows of the 2.4 MB text. src/bin/svc.ld gathers them into one output section
ahead of `.text` (build.rs hands it to svc's link).

svcd lets go of its code pages a second after its last work (`daemon::light_sleep`, for its
PSS at idle), so the next request maps again, one fault per 64 KiB window, all the code it runs:
about 290 KB of functions spread over most of the 2.3 MB text. src/bin/svcd.ld gathers those.

How: a release build; svcd on two units in a temporary directory; `svc status` of one unit and
of all run once each under callgrind, which names every function that ran. svcd cannot run
under valgrind (its clone and pidfds), so gdb attaches to it with a one-shot breakpoint on
every function while `svc` asks for `status` and `list` twice, each a few seconds apart (the
code let go of in between, and the readings taken again after the answer). Each name becomes a
pattern for the linker without the parts that change from build to build (the crate
disambiguators and back-references of a v0 name, .cargo/config.toml asks for v0; the hash of a
legacy one), so that the script still places what it can after the code, a dependency or the
compiler changed; a function that has no pattern yet merely stays where it was. glibc's
functions (not built one function per section) are taken by their object in libc.a.

Rerun it when the status path's code changed much (`cargo bench --bench svc` prints the page
faults of `svc status` and of svcd's answer after an idle second: a rise says a script is
stale), and commit the result.
"""
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "src" / "bin"
# What scripts and probes run in loops: `svc status` of one unit and of all, the quick way (see
# `cli::quick_status`). Other commands go through clap's parser, whose code would crowd them.
COMMANDS = [["status", "chat"], ["status"]]


def run(*args, **kw):
    return subprocess.run(args, check=True, text=True, **kw)


def ran_functions(svc, socket, work):
    """The mangled names of the functions each command ran (callgrind's `fn=` lines)."""
    names = set()
    for i, words in enumerate(COMMANDS):
        out = work / f"callgrind.{i}"
        run("valgrind", "--tool=callgrind", "--demangle=no", "--compress-strings=no",
            "--compress-pos=no", f"--callgrind-out-file={out}", str(svc), "--socket",
            str(socket), *words, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for line in out.read_text().splitlines():
            if line.startswith("fn="):
                # A recursion's level is a suffix: `name'2`.
                names.add(re.sub(r"'\d+$", "", line[3:]))
    return names


# Run inside gdb attached to svcd: a one-shot breakpoint on every function of the binary, then
# the driver's requests; svcd's SIGURG (sent by the driver at its end) stops the count.
GDB_SCRIPT = """
import gdb, os, subprocess
binary = os.path.realpath(os.environ["HOT_BINARY"])
pid = gdb.selected_inferior().pid
base = next(int(line.split("-")[0], 16) for line in open(f"/proc/{pid}/maps")
            if line.split()[-1] == binary and line.split()[2] == "00000000")
gdb.execute("set pagination off")
# Inserted once, not again at each stop: thousands of breakpoints.
gdb.execute("set breakpoint always-inserted on")
gdb.execute("handle SIGURG stop nopass")
gdb.execute("handle SIGCHLD SIGPIPE nostop noprint pass")
breakpoints = set()
for offset in os.environ["HOT_OFFSETS"].split():
    gdb.Breakpoint(f"*{base + int(offset, 16):#x}", internal=True, temporary=True)
    breakpoints.add(base + int(offset, 16))
driver = subprocess.Popen(os.environ["HOT_DRIVER"].split())
hit = set()
while True:
    gdb.execute("continue", to_string=True)
    pc = gdb.selected_frame().pc()
    if pc not in breakpoints:
        break
    hit.add(pc - base)
driver.wait()
with open(os.environ["HOT_OUT"], "w") as out:
    out.write("".join(f"{offset:x}\\n" for offset in sorted(hit)))
gdb.execute("delete")
gdb.execute("detach")
"""


def svcd_functions(svcd, pid, svc, socket, work):
    """The names of the functions svcd ran to answer `status` and `list` (see GDB_SCRIPT)."""
    symbols = {}
    defined = run("nm", "--defined-only", str(svcd), capture_output=True).stdout
    for line in defined.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTwWi" and int(parts[0], 16):
            symbols.setdefault(int(parts[0], 16), []).append(parts[2])
    asks = "; ".join(f"{svc} --socket {socket} {words}" for words in ("status chat", "status", "list"))
    # Twice, each after svcd let go of its code (a second after its last work).
    driver = work / "driver.sh"
    driver.write_text(f"sleep 1.5; {asks}; sleep 2.5; {asks}; sleep 2.5; kill -URG {pid}\n")
    (work / "trace.py").write_text(GDB_SCRIPT)
    out = work / "hit.txt"
    env = {"HOT_BINARY": str(svcd), "HOT_OFFSETS": " ".join(f"{a:x}" for a in symbols),
           "HOT_DRIVER": f"sh {driver}", "HOT_OUT": str(out)}
    run("gdb", "-p", str(pid), "-batch", "-x", str(work / "trace.py"), env={**os.environ, **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return {name for offset in out.read_text().split() for name in symbols[int(offset, 16)]}


def rust_pattern(name):
    """A section pattern for a Rust function that does not depend on the build's hashes."""
    if name.startswith("_ZN"):
        # Legacy mangling ends in `17h` and 16 hex digits of hash, then `E`.
        return re.sub(r"17h[0-9a-f]{16}E$", "17h*E", name)
    # v0: a crate root is `C`, an optional disambiguator `s<base-62>_`, then the name; a
    # back-reference `B<base-62>_` points at an offset of the name, which the hashes shift.
    # A `*` in place of each only widens the pattern: it still matches the function.
    name = re.sub(r"Cs[0-9A-Za-z]*_", "C*", name)
    name = re.sub(r"B[0-9A-Za-z]*_", "B*", name)
    # A local function LLVM made unique has a counter after a dot (`...4next.857`).
    return re.sub(r"\.\d+$", "*", name)


def libc_members(names):
    """The objects of the static libc.a that define C functions among `names`, and the names
    that none defines."""
    libc = run("gcc", "-print-file-name=libc.a", capture_output=True).stdout.strip()
    defined = run("nm", "-A", "--defined-only", libc, capture_output=True).stdout
    members, found = set(), set()
    for line in defined.splitlines():
        # /usr/lib/.../libc.a:memcpy.o:0000000000000000 T memcpy
        parts = line.rsplit(None, 2)
        if len(parts) == 3 and parts[1] in "TtWwi" and parts[2] in names:
            members.add(parts[0].rsplit(":", 2)[1])
            found.add(parts[2])
    # A string function is an ifunc: the variant for this CPU is chosen at start (memmove.o,
    # memmove-avx512-unaligned-erms.o, ...), and valgrind's CPU is not the machine's. All the
    # variants of each one that ran go in.
    objects = {line.rsplit(None, 2)[0].rsplit(":", 2)[1] for line in defined.splitlines()
               if line.count(":") >= 2}
    stems = {m[:-2] for m in members}
    variants = {o for o in objects if o.split("-")[0] in stems} - members
    return sorted(members), sorted(variants), names - found


def main():
    run("cargo", "build", "--release", "--bins", "--quiet", cwd=ROOT)
    triple = re.search(r"^host: (\S+)", run("rustc", "-vV", capture_output=True).stdout, re.M)[1]
    bins = ROOT / "target" / triple / "release"
    with tempfile.TemporaryDirectory(prefix="svc-hot-text.") as tmp:
        work = Path(tmp)
        (work / "units").mkdir()
        for unit in ("chat", "proxy"):
            (work / "units" / f"{unit}.toml").write_text('exec = ["sleep", "100000"]\n')
        (work / "svcd.toml").write_text("")
        socket = work / "state" / "svcd.sock"
        svcd = subprocess.Popen(
            [bins / "svcd", "--units", work / "units", "--state-dir", work / "state",
             "--config", work / "svcd.toml"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while subprocess.run([bins / "svc", "--socket", socket, "wait", "chat", "--for",
                                  "running", "--timeout", "1s"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode:
                if time.monotonic() > deadline:
                    sys.exit("svcd did not start chat within 10 s")
                time.sleep(0.05)
            svc_names = ran_functions(bins / "svc", socket, work)
            svcd_names = svcd_functions(bins / "svcd", svcd.pid, bins / "svc", socket, work)
        finally:
            svcd.terminate()
            svcd.wait()
    write_script("svc", svc_names, "`svc status` runs",
                 "and less to unmap at the exit of each `svc status`", entry=True)
    write_script("svcd", svcd_names, "svcd runs to answer `svc status` and `svc list`",
                 "and less mapped again when svcd answers after it let go of its code", entry=False)


def write_script(binary, names, what, when, entry):
    """Writes src/bin/BINARY.ld, which places the functions `names` ahead of .text."""
    out = BIN / f"{binary}.ld"
    functions = sorted({rust_pattern(n) for n in names if n.startswith(("_ZN", "_R"))})
    c_names = {n for n in names if not n.startswith(("_ZN", "_R", "0x", "("))}
    members, variants, c_names = libc_members(c_names)
    # svc's own C functions (its `main`), and any other C function outside libc.a.
    functions += sorted(c_names)
    lines = [
        f"/* The functions {what},",
        " * side by side ahead of .text: fewer page faults",
        f" * {when}.",
        " * Written by bench/hot_text.py (which says how and when to rerun it); build.rs hands",
        f" * it to the link of {binary}. A pattern that matches nothing is no error. */",
        "SECTIONS {",
        "  .text.hot : {",
    ]
    # LLVM puts a function it knows to be cold (`#[cold]`, one that only panics) in
    # `.text.unlikely.NAME`.
    lines += [f"    *(.text.{p} .text.unlikely.{p})" for p in functions]
    if entry:
        # The entry point, which calls __libc_start_main: crt1.o, or rcrt1.o for a static PIE.
        lines += ["    *crt1.o(.text .text.*)"]
    lines += [f"    *libc.a:{m}(.text .text.*)" for m in members]
    # The linker's stubs for glibc's ifuncs (memcpy, strlen, ...: each call goes through one),
    # which would be placed after all of .text.
    lines += ["    *(.iplt)"]
    # Last, so that those this CPU does not choose leave the rest together.
    lines += [f"    *libc.a:{m}(.text .text.*)" for m in variants]
    lines += ["  }", "} INSERT BEFORE .text;", ""]
    out.write_text("\n".join(lines))
    print(f"{out.relative_to(ROOT)}: {len(functions)} functions' patterns, {len(members)} objects of libc.a and {len(variants)} variants")

if __name__ == "__main__":
    main()

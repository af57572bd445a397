# Build and install svcd and svc with their man pages and systemd service file.
#   make                      build the release binaries (cargo)
#   make install              install them under PREFIX (default /usr/local); DESTDIR honoured
#   make uninstall
# `make install` builds first only when the binaries are missing, so that `sudo make install`
# after `make` does not need a Rust toolchain for root.

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
CARGO ?= cargo
INSTALL ?= install

# .cargo/config.toml builds for the machine's own triple (statically linked), so the binaries
# land in target/TRIPLE/release/. Without rustc (`sudo make install` as a root without a
# toolchain) the triple is guessed from `uname -m`; else set TRIPLE=.
TRIPLE ?= $(or $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p'),$(shell uname -m)-unknown-linux-gnu)
RELEASE := target/$(TRIPLE)/release
BINARIES := $(RELEASE)/svcd $(RELEASE)/svc

.PHONY: all build install uninstall

all: build

build:
	$(CARGO) build --release --locked --bins

$(BINARIES):
	$(CARGO) build --release --locked --bins

install: $(BINARIES)
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSCONFDIR)/svc/units
	$(INSTALL) -m 0755 $(BINARIES) $(DESTDIR)$(BINDIR)/
	$(INSTALL) -m 0644 man/svc.1 $(DESTDIR)$(MANDIR)/man1/
	$(INSTALL) -m 0644 man/svc.unit.5 $(DESTDIR)$(MANDIR)/man5/
	$(INSTALL) -m 0644 man/svcd.8 $(DESTDIR)$(MANDIR)/man8/
	sed 's|/usr/local/bin/svcd|$(BINDIR)/svcd|; s|/etc/svc/units|$(SYSCONFDIR)/svc/units|' \
		contrib/systemd/svcd.service > $(DESTDIR)$(SYSTEMDUNITDIR)/svcd.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/svcd.service

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/svcd $(DESTDIR)$(BINDIR)/svc \
		$(DESTDIR)$(MANDIR)/man1/svc.1 $(DESTDIR)$(MANDIR)/man5/svc.unit.5 \
		$(DESTDIR)$(MANDIR)/man8/svcd.8 $(DESTDIR)$(SYSTEMDUNITDIR)/svcd.service

# vmfs — plain Makefile.  `make`, `make check`, `make demo`, `make deps`,
# `make install PREFIX=/usr DESTDIR=/tmp/pkg`, `make SANITIZE=address,undefined check`.

PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
PKG_CONFIG ?= pkg-config

# Debian packages the build, the tests and the demo need.
DEB_PKGS := build-essential pkg-config libfuse3-dev fuse3 libaio-dev \
	libqb-dev libtokyocabinet-dev libcunit1-dev libblkid-dev libjson-c-dev \
	libsystemd-dev libqb-tools fio attr \
	e2fsprogs fdisk groff-base man-db spin \
	corosync iproute2 util-linux libcpg-dev libquorum-dev libcmap-dev \
	libcorosync-common-dev libiscsi-dev libiscsi-bin tgt \
	qemu-system-x86 qemu-utils busybox-static cpio linux-image-cloud-amd64

PKGS := fuse3 libqb tokyocabinet blkid json-c libiscsi
# Only bin/vmfsd talks to systemd (sd_notify).
VMFSD_PKGS := libsystemd
# corosync (lockmgr/clusternet.c): linked into what runs the fast path.
CN_PKGS := libcpg libquorum libcmap libcorosync_common
CN_LIBS = $(shell $(PKG_CONFIG) --libs $(CN_PKGS) 2>/dev/null)

ifneq ($(SANITIZE),)
BUILD    ?= build-san
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
else
BUILD    ?= build
SANFLAGS :=
endif
BIN ?= bin

WARN   := -Wall -Wextra -Wshadow -Wmissing-prototypes -Werror
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=gnu11 $(WARN) -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 \
	-Iinclude $(shell $(PKG_CONFIG) --cflags $(PKGS) $(VMFSD_PKGS) $(CN_PKGS) 2>/dev/null) \
	$(SANFLAGS) $(CFLAGS) -MMD -MP
LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) -laio -lpthread
# error/log.c's qb_log_real_ and qb_log_callsite_get2 serve libqb's and
# corosync's own messages too (include/vmfs/log.h): the programs export
# them so that those libraries bind to them.
ALL_LDFLAGS := $(SANFLAGS) -Wl,--export-dynamic-symbol=qb_log_real_ -Wl,--export-dynamic-symbol=qb_log_callsite_get2 $(LDFLAGS)

# Library code: every component except the files holding main().  Of
# vmfsd/, only what the CLI needs is library code (the host state DB and
# the control socket's client and wire format); the daemon proper links
# into bin/vmfsd alone.
LIB_DIRS := error lun format lockmgr journal vol fuse fsck hypervisor
VMFSD_LIB_SRCS := vmfsd/hoststate.c vmfsd/ctl_proto.c vmfsd/ctl_client.c \
	vmfsd/ctl_vm.c
LIB_SRCS := $(filter-out %_main.c,$(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))) \
	$(VMFSD_LIB_SRCS)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
VMFSD_SRCS := $(filter-out $(VMFSD_LIB_SRCS),$(wildcard vmfsd/*.c))
VMFSD_OBJS := $(VMFSD_SRCS:%.c=$(BUILD)/%.o)
CLI_SRCS := $(wildcard cli/*.c)
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_OBJS := $(UNIT_SRCS:%.c=$(BUILD)/%.o)
# The corruption tool (tools/corrupt/): a test program, never installed;
# the unit tests link its damage functions too.
CORRUPT_SRCS := $(filter-out %_main.c,$(wildcard tools/corrupt/*.c))
CORRUPT_OBJS := $(CORRUPT_SRCS:%.c=$(BUILD)/%.o)

PROGS := $(BIN)/vmfs $(BIN)/vmfsd
# Programs only the tests run (tests/README.md), never installed.
TEST_PROGS := $(BUILD)/crashsim $(BUILD)/vmfs-corrupt $(BUILD)/vmfsd-ctl-raw \
	$(BUILD)/lockhold $(BUILD)/cpgforge $(BUILD)/cnpeer $(BUILD)/prfence

.PHONY: all check unit integration demo deps install uninstall clean bench crashtest clustertest model guest
all: $(PROGS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/libvmfs.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BIN)/vmfsd: $(VMFSD_OBJS) $(BUILD)/libvmfs.a
	@mkdir -p $(BIN)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(CN_LIBS) \
		$(shell $(PKG_CONFIG) --libs $(VMFSD_PKGS) 2>/dev/null)

$(BIN)/vmfs: $(CLI_OBJS) $(BUILD)/libvmfs.a
	@mkdir -p $(BIN)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/vmfs-corrupt: $(BUILD)/tools/corrupt/corrupt_main.o $(CORRUPT_OBJS) $(BUILD)/libvmfs.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# A raw control-socket client for tests/integration/t_ctl.sh: requests the
# CLI never sends.  A test program, never installed.
$(BUILD)/vmfsd-ctl-raw: $(BUILD)/tests/ctl/ctl_raw.o $(BUILD)/libvmfs.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/test_unit: $(UNIT_OBJS) $(CORRUPT_OBJS) $(BUILD)/libvmfs.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) -lcunit

# Test programs (tests/tools/): never installed.
$(BUILD)/lockhold: $(BUILD)/tests/tools/lockhold.o $(BUILD)/libvmfs.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# Storage fencing at an iSCSI target, two handles (t_iscsi_fence.sh).
$(BUILD)/prfence: $(BUILD)/tests/tools/prfence.o $(BUILD)/libvmfs.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# Joins a volume's CPG group and sends forged messages (t_cluster_hosts.sh).
$(BUILD)/cpgforge: $(BUILD)/tests/tools/cpgforge.o $(BUILD)/libvmfs.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(CN_LIBS)

# The fast path of a made-up host, serving or asking (t_cluster_ask.sh).
$(BUILD)/cnpeer: $(BUILD)/tests/tools/cnpeer.o $(BUILD)/libvmfs.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(CN_LIBS)

# The test guest (guest/build.sh): the cloud kernel and a busybox
# initramfs whose /init writes a counter to its first disk.
GUEST := $(BUILD)/guest/vmlinuz $(BUILD)/guest/initrd.img
guest: $(GUEST)
$(GUEST) &: guest/build.sh guest/init
	guest/build.sh $(BUILD)/guest

# Install what is missing from Debian's archive (needs root or sudo).
deps:
	@missing=""; for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "make deps: installing$$missing"; \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

unit: $(BUILD)/test_unit
	$(BUILD)/test_unit

integration: $(PROGS) $(TEST_PROGS) $(GUEST)
	VMFS_BIN=$(abspath $(BIN)) VMFS_BUILD=$(abspath $(BUILD)) tests/run.sh

check: deps
	@$(MAKE) --no-print-directory all $(BUILD)/test_unit $(TEST_PROGS) $(GUEST)
	VMFS_BIN=$(abspath $(BIN)) VMFS_BUILD=$(abspath $(BUILD)) tests/run.sh $(BUILD)/test_unit

demo: deps
	@$(MAKE) --no-print-directory all $(GUEST)
	VMFS_GUEST=$(abspath $(BUILD))/guest ./demo.sh

bench: deps
	@$(MAKE) --no-print-directory all
	VMFS_BIN=$(abspath $(BIN)) bench/datapath.sh
	VMFS_BIN=$(abspath $(BIN)) bench/meta.sh

# `make install PREFIX=/usr` is what makes `mount -t vmfs` work: mount(8)
# runs helpers only from /sbin, /sbin/fs.d and /sbin/fs (/usr/sbin through
# Debian's merged /usr).  fsck(8) and mkfs(8) also search PATH.
HELPERS   := mount.vmfs fsck.vmfs mkfs.vmfs
MAN8      := $(wildcard docs/man/*.8)
DOCS      := README.md $(wildcard docs/*.md)
SBINDIR   := $(DESTDIR)$(PREFIX)/sbin
MAN8DIR   := $(DESTDIR)$(PREFIX)/share/man/man8
COMPDIR   := $(DESTDIR)$(PREFIX)/share/bash-completion/completions
DOCDIR    := $(DESTDIR)$(PREFIX)/share/doc/vmfs
UNITDIR   := $(DESTDIR)$(PREFIX)/lib/systemd/system
UNIT      := contrib/systemd/vmfs@.service

install: $(PROGS)
	install -d $(SBINDIR) $(MAN8DIR) $(COMPDIR) $(DOCDIR) $(UNITDIR)
	install -m 0755 $(PROGS) $(SBINDIR)/
	for h in $(HELPERS); do ln -sf vmfs $(SBINDIR)/$$h; done
	install -m 0644 $(MAN8) $(MAN8DIR)/
	install -m 0644 contrib/bash-completion/vmfs $(COMPDIR)/vmfs
	install -m 0644 $(DOCS) $(DOCDIR)/
	sed 's#/usr/sbin/vmfsd#$(PREFIX)/sbin/vmfsd#' $(UNIT) >$(UNITDIR)/vmfs@.service
	chmod 0644 $(UNITDIR)/vmfs@.service

# Exactly what install put there; directories are left to their owners.
uninstall:
	rm -f $(addprefix $(SBINDIR)/,$(notdir $(PROGS)) $(HELPERS)) \
		$(addprefix $(MAN8DIR)/,$(notdir $(MAN8))) $(COMPDIR)/vmfs \
		$(addprefix $(DOCDIR)/,$(notdir $(DOCS))) $(UNITDIR)/vmfs@.service
	rmdir $(DOCDIR) 2>/dev/null || true

clean:
	rm -rf build build-san $(BIN)

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d) $(UNIT_OBJS:.o=.d) $(VMFSD_OBJS:.o=.d) \
	$(CORRUPT_OBJS:.o=.d) $(BUILD)/tools/corrupt/corrupt_main.d $(BUILD)/tests/ctl/ctl_raw.d \
	$(BUILD)/tests/tools/lockhold.d $(BUILD)/tests/tools/cpgforge.d \
	$(BUILD)/tests/tools/cnpeer.d $(BUILD)/tests/tools/prfence.d

# ---- fuzzing: libFuzzer harnesses in tests/fuzz/ ------------------------
# `make fuzz [FUZZ_SECONDS=60]` compiles the library with clang, ASan, UBSan
# and coverage into $(FUZZ_BUILD)/ and runs every harness for FUZZ_SECONDS
# (tests/fuzz/run.sh prints one line each).  The fsck harness joins once
# the checker is in (fsck/pass*.c and its command, cli/fsck.c).
FUZZ_CC      ?= clang
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
FUZZ_CFLAGS  := -std=gnu11 $(WARN) -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 \
	-Iinclude $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null) \
	-O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link -MMD -MP
FUZZ_NAMES   := mdblock geom lockjnl \
	$(if $(and $(wildcard fsck/pass*.c),$(wildcard cli/fsck.c)),fsck)
FUZZ_PROGS   := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_OBJS    := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/tests/fuzz/fuzz_%.o)
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(FUZZ_BUILD)/%.o)

.PHONY: fuzz fuzz-build fuzz-seeds fuzz-replay
.SECONDARY: $(FUZZ_OBJS)

fuzz: fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(FUZZ_PROGS)

fuzz-build: $(FUZZ_PROGS)

fuzz-seeds: fuzz-build
	tests/fuzz/run.sh --seeds $(FUZZ_PROGS)

# Rerun the saved findings (tests/fuzz/crashes/): which still fail.
fuzz-replay: fuzz-build
	tests/fuzz/run.sh --replay $(FUZZ_PROGS)

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/libvmfs.a: $(FUZZ_LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/tests/fuzz/fuzz_%.o $(FUZZ_BUILD)/libvmfs.a
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LIBS)

# ---- bench/populate: fills a volume through the vol_* API (bench/fsck.sh)
$(BUILD)/bench/populate: $(BUILD)/bench/populate.o $(BUILD)/libvmfs.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

.PHONY: bench-fsck
bench-fsck: deps
	@$(MAKE) --no-print-directory all $(BUILD)/bench/populate
	VMFS_BIN=$(abspath $(BIN)) VMFS_POPULATE=$(abspath $(BUILD)/bench/populate) bench/fsck.sh

# ---- bench/lockcost: I/Os and time of lock changes (bench/RESULTS.md)
$(BUILD)/bench/lockcost: $(BUILD)/bench/lockcost.o $(BUILD)/libvmfs.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# ---- bench/iscsiwrite: raw WRITE(16) through libiscsi, the write
# reference of bench/iscsi.sh
$(BUILD)/bench/iscsiwrite: $(BUILD)/bench/iscsiwrite.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

.PHONY: bench-cpg
bench-cpg: deps all
	VMFS_BIN=$(abspath $(BIN)) bench/cpg.sh

# The data path over iSCSI against iscsi-perf (tgtd in a namespace).
.PHONY: bench-iscsi
bench-iscsi: deps all
	@$(MAKE) --no-print-directory $(BUILD)/bench/lockcost $(BUILD)/bench/iscsiwrite
	VMFS_BIN=$(abspath $(BIN)) VMFS_BUILD=$(abspath $(BUILD)) bench/iscsi.sh

.PHONY: bench-vm
bench-vm: deps
	@$(MAKE) --no-print-directory all $(GUEST)
	VMFS_BIN=$(abspath $(BIN)) VMFS_GUEST=$(abspath $(BUILD))/guest bench/vm.sh

.PHONY: bench-migrate
bench-migrate: deps
	@$(MAKE) --no-print-directory all $(GUEST)
	VMFS_BIN=$(abspath $(BIN)) VMFS_GUEST=$(abspath $(BUILD))/guest bench/migrate.sh

# HA: kill -9 of the host running an HA VM to the VM running again.
.PHONY: bench-ha
bench-ha: deps
	@$(MAKE) --no-print-directory all $(GUEST)
	VMFS_BIN=$(abspath $(BIN)) VMFS_BUILD=$(abspath $(BUILD)) bench/ha.sh

.PHONY: bench-locks
bench-locks: deps
	@$(MAKE) --no-print-directory $(BUILD)/bench/lockcost
	$(BUILD)/bench/lockcost

-include $(FUZZ_LIB_OBJS:.o=.d) $(FUZZ_OBJS:.o=.d) $(BUILD)/bench/populate.d $(BUILD)/bench/lockcost.d $(BUILD)/bench/iscsiwrite.d

# ---- tests/crash: the crash-consistency harness (tests/crash/README.md)
# `make check` runs a fast subset through tests/integration/t_crash.sh;
# `make crashtest [CRASH_ARGS="--seed 7"]` checks every prefix of the
# recorded log and at least 10,000 crash states, of one host and then of
# two (--hosts 2; t_crash2.sh is its make check subset).
CRASH_SRCS := $(wildcard tests/crash/*.c)
CRASH_OBJS := $(CRASH_SRCS:%.c=$(BUILD)/%.o)
CRASH_ARGS ?=

$(BUILD)/crashsim: $(CRASH_OBJS) $(BUILD)/libvmfs.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# The multi-host scenarios at full length: 100 random rounds of VM
# failures on the file backend and on iSCSI (with LUN path cuts), the
# storm with 20 kills of a host in the middle of it (make check runs one).
clustertest: deps
	@$(MAKE) --no-print-directory all $(GUEST)
	VMFS_BIN=$(abspath $(BIN)) VMFS_BUILD=$(abspath $(BUILD)) ROUNDS=$${ROUNDS:-100} \
		tests/cluster/vm_chaos.sh
	VMFS_BIN=$(abspath $(BIN)) VMFS_BUILD=$(abspath $(BUILD)) ROUNDS=$${ROUNDS:-100} \
		BACKEND=iscsi tests/cluster/vm_chaos.sh
	VMFS_BIN=$(abspath $(BIN)) VMFS_BUILD=$(abspath $(BUILD)) STORM_SECS=60 KILLS=20 \
		tests/integration/t_multihost_storm.sh
	VMFS_BIN=$(abspath $(BIN)) VMFS_BUILD=$(abspath $(BUILD)) \
		tests/integration/t_multihost.sh

crashtest: deps
	@$(MAKE) --no-print-directory $(BUILD)/crashsim
	@d=$$(mktemp -d /tmp/vmfs-crashtest.XXXXXX) || exit 2; \
	$(BUILD)/crashsim --dir "$$d" --full $(CRASH_ARGS); rc=$$?; \
	rm -rf "$$d"; [ $$rc -eq 0 ] || exit $$rc; \
	d=$$(mktemp -d /tmp/vmfs-crashtest.XXXXXX) || exit 2; \
	$(BUILD)/crashsim --dir "$$d" --full --hosts 2 $(CRASH_ARGS); rc=$$?; \
	rm -rf "$$d"; exit $$rc

-include $(CRASH_OBJS:.o=.d)

# ---- the protocol model: docs/protocol.pml checked by spin --------------
# `make model` checks both lock primitives exhaustively (0 errors) and
# each seeded bug (spin must find it), in temp directories under
# $(BUILD)/model; docs/protocol-model.md.  `make check` runs it through
# tests/integration/t_model.sh.
model: deps
	tests/model/run.sh docs/protocol.pml $(BUILD)/model

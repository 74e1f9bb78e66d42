# qimg Makefile.  Run ./configure first (it writes config.mk and config.h).
# Explicit object lists: adding a file means adding a line here.

-include config.mk

CC ?= cc
CFLAGS ?= -O2 -g
PREFIX ?= /usr/local
BINDIR = $(PREFIX)/bin
MANDIR = $(PREFIX)/share/man/man1

WARN = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
       -Wno-unused-parameter -Wformat=2 -Wvla
ALL_CFLAGS = -std=gnu11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -I. -Isrc \
	$(WARN) $(CFLAGS) $(SAN_FLAGS) $(LIB_CFLAGS) -MMD -MP
ALL_LDFLAGS = $(LDFLAGS) $(SAN_FLAGS)

UTIL_OBJS = \
	src/util/msg.o \
	src/util/size.o \
	src/util/opts.o \
	src/util/json.o \
	src/util/render.o \
	src/util/imgopts.o \
	src/util/progress.o

CORE_OBJS = \
	src/core/err.o \
	src/core/file.o \
	src/core/kv.o \
	src/core/img.o \
	src/core/raw.o \
	src/core/qcow2.o \
	src/core/qcow2_header.o \
	src/core/qcow2_header_write.o \
	src/core/qcow2_create.o \
	src/core/qcow2_layout.o \
	src/core/qcow2_snapshot.o \
	src/core/qcow2_bitmap.o \
	src/core/luks_header.o \
	src/core/chain.o \
	src/core/sparse.o \
	src/core/compress_pipeline.o \
	src/core/convert.o \
	src/core/convert_worker.o \
	src/core/convert_write.o \
	src/core/secmem.o \
	src/core/secret.o \
	src/core/crypto_cipher.o \
	src/core/crypto_par.o \
	src/core/crypto_kdf.o \
	src/core/crypto_opts.o \
	src/core/luks_format.o \
	src/core/luks_keys.o \
	src/core/qcow2_engine.o \
	src/core/qcow2_refcount.o \
	src/core/qcow2_cache.o \
	src/core/qcow2_compress.o \
	src/core/qcow2_map.o \
	src/core/qcow2_crypt.o \
	src/core/qcow2_alloc.o \
	src/core/qcow2_io.o \
	src/core/qcow2_rebuild.o \
	src/core/check.o \
	src/core/qcow2_check.o \
	src/core/qcow2_check_refs.o \
	src/core/qcow2_check_walk.o \
	src/core/qcow2_check_copied.o \
	src/core/qcow2_check_snap.o \
	src/core/qcow2_check_repair.o \
	src/core/qcow2_check_rebuild.o \
	src/core/qcow2_check_data.o \
	src/core/qcow2_snapshot_txn.o \
	src/core/qcow2_snapshot_tree.o \
	src/core/qcow2_snapshot_ops.o \
	src/core/img_snapshot.o \
	src/core/resize.o \
	src/core/qcow2_resize.o \
	src/core/rebase.o \
	src/core/qcow2_backing.o

CMD_OBJS = \
	src/cmd/common.o \
	src/cmd/create.o \
	src/cmd/info.o \
	src/cmd/convert.o \
	src/cmd/convert_open.o \
	src/cmd/io.o \
	src/cmd/io_table.o \
	src/cmd/io_open.o \
	src/cmd/io_rw.o \
	src/cmd/io_misc.o \
	src/cmd/check.o \
	src/cmd/snapshot.o \
	src/cmd/imgopen.o \
	src/cmd/resize.o \
	src/cmd/rebase.o

LIB_OBJS = $(UTIL_OBJS) $(CORE_OBJS)
OBJS = src/qimg.o $(CMD_OBJS) $(LIB_OBJS)

UNIT_OBJS = \
	tests/unit/unit_main.o \
	tests/unit/test_size.o \
	tests/unit/test_opts.o \
	tests/unit/test_json.o \
	tests/unit/test_qcow2_header.o \
	tests/unit/test_sparse.o \
	tests/unit/test_raw.o \
	tests/unit/test_qcow2_header_write.o \
	tests/unit/test_crypto.o \
	tests/unit/test_luks.o \
	tests/unit/test_secret.o \
	tests/unit/test_refcount.o \
	tests/unit/test_compress.o \
	tests/unit/test_check.o \
	tests/unit/test_snapshot.o

# The engine's differential/crash tester, driven by tests/cli/45-engine.bats.
FUZZ_OBJS = tests/engine/qcow2_fuzz.o tests/engine/qcow2_fuzz_tools.o

all: qimg

config.mk config.h:
	@echo "Run ./configure first." >&2; exit 1

qimg: $(OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $(OBJS) $(LIBS)

%.o: %.c config.h
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

tests/unit/run_unit: $(UNIT_OBJS) $(LIB_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $(UNIT_OBJS) $(LIB_OBJS) $(LIBS)

# A driver that runs the crypto core against qemu-made images (60-crypto.bats).
TOOL_OBJS = tests/tools/crypto-tool.o

tests/tools/crypto-tool: $(TOOL_OBJS) $(LIB_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $(TOOL_OBJS) $(LIB_OBJS) $(LIBS)

tests/engine/qcow2-fuzz: $(FUZZ_OBJS) $(LIB_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $(FUZZ_OBJS) $(LIB_OBJS) $(LIBS)

unit: tests/unit/run_unit
	./tests/unit/run_unit

# check: unit tests first (fast, precise), then the CLI behaviour with bats.
check: qimg tests/unit/run_unit tests/engine/qcow2-fuzz tests/tools/crypto-tool
	./tests/unit/run_unit
	QIMG=$(CURDIR)/qimg ./tests/run-cli.sh

# soak: the engine's long differential and crash runs (minutes to hours).
soak: tests/engine/qcow2-fuzz
	./tests/engine/soak.sh $(SOAK_SEEDS)

install: qimg
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)
	install -m 755 qimg $(DESTDIR)$(BINDIR)/qimg
	install -m 644 man/qimg.1 $(DESTDIR)$(MANDIR)/qimg.1

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/qimg $(DESTDIR)$(MANDIR)/qimg.1

clean:
	rm -f qimg tests/unit/run_unit $(OBJS) $(UNIT_OBJS) $(OBJS:.o=.d) $(UNIT_OBJS:.o=.d)
	rm -f tests/tools/crypto-tool $(TOOL_OBJS) $(TOOL_OBJS:.o=.d)
	rm -f tests/engine/qcow2-fuzz $(FUZZ_OBJS) $(FUZZ_OBJS:.o=.d)
	rm -rf tests/tmp

distclean: clean
	rm -f config.mk config.h config.log

# bench: qimg convert against qemu-img on a 4 GiB ext4 image (minutes;
# not part of check).  See tests/bench/README.md.
bench: qimg
	./tests/bench/convert.sh

.PHONY: all check unit soak install uninstall clean distclean bench

-include $(OBJS:.o=.d) $(UNIT_OBJS:.o=.d) $(FUZZ_OBJS:.o=.d) $(TOOL_OBJS:.o=.d)

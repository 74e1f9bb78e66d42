/*
 * io_table.c: the qemu-io commands "qimg io" knows, with qemu-io 7.2's
 * usage lines and extended help texts verbatim ("help" and usage errors
 * print them, and scripts may compare them), their argument counts, their
 * one-letter aliases and whether they need an open or a writable image.
 * Sorted by name, the order "help" lists them in.
 */
#include <stddef.h>

#include "cmd/io.h"

static const char aio_read_help[] =
	"\n"
	" asynchronously reads a range of bytes from the given offset\n"
	"\n"
	" Example:\n"
	" 'aio_read -v 512 1k 1k ' - dumps 2 kilobytes read from 512"
	" bytes into the file\n"
	"\n"
	" Reads a segment of the currently open file, optionally"
	" dumping it to the\n"
	" standard output stream (with -v option) for subsequent inspection.\n"
	" The read is performed asynchronously and the aio_flush"
	" command must be\n"
	" used to ensure all outstanding aio requests have been completed.\n"
	" Note that due to its asynchronous nature, this command will be\n"
	" considered successful once the request is submitted, independently\n"
	" of potential I/O errors or pattern mismatches.\n"
	" -C, -- report statistics in a machine parsable format\n"
	" -P, -- use a pattern to verify read data\n"
	" -i, -- treat request as invalid, for exercising stats\n"
	" -v, -- dump buffer to standard output\n"
	" -q, -- quiet mode, do not show I/O statistics\n"
	"\n";

static const char aio_write_help[] =
	"\n"
	" asynchronously writes a range of bytes from the given offset source\n"
	" from multiple buffers\n"
	"\n"
	" Example:\n"
	" 'aio_write 512 1k 1k' - writes 2 kilobytes at 512 bytes"
	" into the open file\n"
	"\n"
	" Writes into a segment of the currently open file, using a buffer\n"
	" filled with a set pattern (0xcdcdcdcd).\n"
	" The write is performed asynchronously and the aio_flush"
	" command must be\n"
	" used to ensure all outstanding aio requests have been completed.\n"
	" Note that due to its asynchronous nature, this command will be\n"
	" considered successful once the request is submitted, independently\n"
	" of potential I/O errors or pattern mismatches.\n"
	" -P, -- use different pattern to fill file\n"
	" -C, -- report statistics in a machine parsable format\n"
	" -f, -- use Force Unit Access semantics\n"
	" -i, -- treat request as invalid, for exercising stats\n"
	" -q, -- quiet mode, do not show I/O statistics\n"
	" -u, -- with -z, allow unmapping\n"
	" -z, -- write zeroes using blk_aio_pwrite_zeroes\n"
	"\n";

static const char discard_help[] =
	"\n"
	" discards a range of bytes from the given offset\n"
	"\n"
	" Example:\n"
	" 'discard 512 1k' - discards 1 kilobyte from 512 bytes into the file\n"
	"\n"
	" Discards a segment of the currently open file.\n"
	" -C, -- report statistics in a machine parsable format\n"
	" -q, -- quiet mode, do not show I/O statistics\n"
	"\n";

static const char open_help[] =
	"\n"
	" opens a new file in the requested mode\n"
	"\n"
	" Example:\n"
	" 'open -n -o driver=raw /tmp/data' - opens raw data file"
	" read-write, uncached\n"
	"\n"
	" Opens a file for subsequent use by all of the other"
	" qemu-io commands.\n"
	" -r, -- open file read-only\n"
	" -s, -- use snapshot file\n"
	" -C, -- use copy-on-read\n"
	" -n, -- disable host cache, short for -t none\n"
	" -U, -- force shared permissions\n"
	" -k, -- use kernel AIO implementation (Linux only, prefer use of -i)\n"
	" -i, -- use AIO mode (threads, native or io_uring)\n"
	" -t, -- use the given cache mode for the image\n"
	" -d, -- use the given discard mode for the image\n"
	" -o, -- options to be given to the block driver\n";

static const char read_help[] =
	"\n"
	" reads a range of bytes from the given offset\n"
	"\n"
	" Example:\n"
	" 'read -v 512 1k' - dumps 1 kilobyte read from 512 bytes"
	" into the file\n"
	"\n"
	" Reads a segment of the currently open file, optionally"
	" dumping it to the\n"
	" standard output stream (with -v option) for subsequent inspection.\n"
	" -b, -- read from the VM state rather than the virtual disk\n"
	" -C, -- report statistics in a machine parsable format\n"
	" -l, -- length for pattern verification (only with -P)\n"
	" -p, -- ignored for backwards compatibility\n"
	" -P, -- use a pattern to verify read data\n"
	" -q, -- quiet mode, do not show I/O statistics\n"
	" -s, -- start offset for pattern verification (only with -P)\n"
	" -v, -- dump buffer to standard output\n"
	"\n";

static const char readv_help[] =
	"\n"
	" reads a range of bytes from the given offset into multiple buffers\n"
	"\n"
	" Example:\n"
	" 'readv -v 512 1k 1k ' - dumps 2 kilobytes read from 512"
	" bytes into the file\n"
	"\n"
	" Reads a segment of the currently open file, optionally"
	" dumping it to the\n"
	" standard output stream (with -v option) for subsequent inspection.\n"
	" Uses multiple iovec buffers if more than one byte range is"
	" specified.\n"
	" -C, -- report statistics in a machine parsable format\n"
	" -P, -- use a pattern to verify read data\n"
	" -v, -- dump buffer to standard output\n"
	" -q, -- quiet mode, do not show I/O statistics\n"
	"\n";

static const char reopen_help[] =
	"\n"
	" Changes the open options of an already opened image\n"
	"\n"
	" Example:\n"
	" 'reopen -o lazy-refcounts=on' - activates lazy refcount"
	" writeback on a qcow2 image\n"
	"\n"
	" -r, -- Reopen the image read-only\n"
	" -w, -- Reopen the image read-write\n"
	" -c, -- Change the cache mode to the given value\n"
	" -o, -- Changes block driver options (cf. 'open' command)\n"
	"\n";

static const char sigraise_help[] =
	"\n"
	" raises the given signal\n"
	"\n"
	" Example:\n"
	" 'sigraise 15' - raises SIGTERM\n"
	"\n"
	" Invokes raise(signal), where \"signal\" is the mandatory"
	" integer argument\n"
	" given to sigraise.\n"
	"\n";

static const char write_help[] =
	"\n"
	" writes a range of bytes from the given offset\n"
	"\n"
	" Example:\n"
	" 'write 512 1k' - writes 1 kilobyte at 512 bytes into the open file\n"
	"\n"
	" Writes into a segment of the currently open file, using a buffer\n"
	" filled with a set pattern (0xcdcdcdcd).\n"
	" -b, -- write to the VM state rather than the virtual disk\n"
	" -c, -- write compressed data with blk_write_compressed\n"
	" -f, -- use Force Unit Access semantics\n"
	" -n, -- with -z, don't allow slow fallback\n"
	" -p, -- ignored for backwards compatibility\n"
	" -P, -- use different pattern to fill file\n"
	" -s, -- use a pattern file to fill the write buffer\n"
	" -C, -- report statistics in a machine parsable format\n"
	" -q, -- quiet mode, do not show I/O statistics\n"
	" -u, -- with -z, allow unmapping\n"
	" -z, -- write zeroes using blk_co_pwrite_zeroes\n"
	"\n";

static const char writev_help[] =
	"\n"
	" writes a range of bytes from the given offset source from"
	" multiple buffers\n"
	"\n"
	" Example:\n"
	" 'writev 512 1k 1k' - writes 2 kilobytes at 512 bytes into"
	" the open file\n"
	"\n"
	" Writes into a segment of the currently open file, using a buffer\n"
	" filled with a set pattern (0xcdcdcdcd).\n"
	" -P, -- use different pattern to fill file\n"
	" -C, -- report statistics in a machine parsable format\n"
	" -f, -- use Force Unit Access semantics\n"
	" -q, -- quiet mode, do not show I/O statistics\n"
	"\n";

const struct io_cmd io_cmds[] = {
	{ "abort", NULL, io_abort, 0, 0, IO_NOFILE_OK,
	  "abort -- simulate a program crash using abort(3)",
	  NULL },
	{ "aio_flush", NULL, io_aio_flush, 0, 0, 0,
	  "aio_flush -- completes all outstanding aio requests",
	  NULL },
	{ "aio_read", NULL, io_aio_read, 2, -1, 0,
	  "aio_read [-Ciqv] [-P pattern] off len [len..] --"
	  " asynchronously reads a number of bytes",
	  aio_read_help },
	{ "aio_write", NULL, io_aio_write, 2, -1, IO_WRITES,
	  "aio_write [-Cfiquz] [-P pattern] off len [len..] --"
	  " asynchronously writes a number of bytes",
	  aio_write_help },
	{ "alloc", "a", io_alloc, 1, 2, 0,
	  "alloc offset [count] -- checks if offset is allocated in the file",
	  NULL },
	{ "break", NULL, io_break, 2, 2, 0,
	  "break event tag -- sets a breakpoint on event and tags the"
	  " stopped request as tag",
	  NULL },
	{ "close", "c", io_close, 0, 0, 0,
	  "close -- close the current open file",
	  NULL },
	{ "discard", "d", io_discard, 2, -1, IO_WRITES,
	  "discard [-Cq] off len -- discards a number of bytes at a"
	  " specified offset",
	  discard_help },
	{ "flush", "f", io_flush, 0, 0, 0,
	  "flush -- flush all in-core file state to disk",
	  NULL },
	{ "help", "?", io_help, 0, 1, IO_NOFILE_OK,
	  "help [command] -- help for one or all commands",
	  NULL },
	{ "info", "i", io_info, 0, 0, 0,
	  "info -- prints information about the current file",
	  NULL },
	{ "length", "l", io_length, 0, 0, 0,
	  "length -- gets the length of the current file",
	  NULL },
	{ "map", NULL, io_map, 0, 0, 0,
	  "map  -- prints the allocated areas of a file",
	  NULL },
	{ "open", "o", io_open, 1, -1, IO_NOFILE_OK,
	  "open [-rsCnkU] [-t cache] [-d discard] [-o options] [path]"
	  " -- open the file specified by path",
	  open_help },
	{ "quit", "q", io_quit, 0, -1, IO_NOFILE_OK,
	  "quit -- exit the program",
	  NULL },
	{ "read", "r", io_read, 2, -1, 0,
	  "read [-abCqv] [-P pattern [-s off] [-l len]] off len --"
	  " reads a number of bytes at a specified offset",
	  read_help },
	{ "readv", NULL, io_readv, 2, -1, 0,
	  "readv [-Cqv] [-P pattern] off len [len..] -- reads a number"
	  " of bytes at a specified offset",
	  readv_help },
	{ "remove_break", NULL, io_remove_break, 1, 1, 0,
	  "remove_break tag -- remove a breakpoint by tag",
	  NULL },
	{ "reopen", NULL, io_reopen, 0, -1, 0,
	  "reopen [(-r|-w)] [-c cache] [-o options] -- reopens an"
	  " image with new options",
	  reopen_help },
	{ "resume", NULL, io_resume, 1, 1, 0,
	  "resume tag -- resumes the request tagged as tag",
	  NULL },
	{ "sigraise", NULL, io_sigraise, 1, 1, IO_NOFILE_OK,
	  "sigraise signal -- raises a signal",
	  sigraise_help },
	{ "sleep", NULL, io_sleep, 1, 1, IO_NOFILE_OK,
	  "sleep -- waits for the given value in milliseconds",
	  NULL },
	{ "truncate", "t", io_truncate, 1, 3, IO_WRITES,
	  "truncate [-m prealloc_mode] off -- truncates the current"
	  " file at the given offset",
	  NULL },
	{ "wait_break", NULL, io_wait_break, 1, 1, 0,
	  "wait_break tag -- waits for the suspension of a request",
	  NULL },
	{ "write", "w", io_write, 2, -1, IO_WRITES,
	  "write [-bcCfnquz] [-P pattern | -s source_file] off len --"
	  " writes a number of bytes at a specified offset",
	  write_help },
	{ "writev", NULL, io_writev, 2, -1, IO_WRITES,
	  "writev [-Cfq] [-P pattern] off len [len..] -- writes a"
	  " number of bytes at a specified offset",
	  writev_help },
	{ NULL, NULL, NULL, 0, 0, 0, NULL, NULL },
};

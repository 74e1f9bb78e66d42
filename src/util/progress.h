/*
 * progress.h: progress reports for long-running commands.
 *
 * Two shapes, chosen by the command:
 *   PROGRESS_HUMAN: qemu-img's "-p" line on stdout, "    (%.2f/100%)\r",
 *     printed at 0%, whenever the value has moved by more than the minimum
 *     step since the last print, and at 100%; progress_end() prints the
 *     closing "\n".  Byte for byte what qemu-img 7.2 prints.
 *   PROGRESS_JSON: one JSON object per line on stderr,
 *     {"bytes-done": N, "bytes-total": N, "elapsed": SECONDS}: the first
 *     update, then at most every 100 ms or min_step percent, and a last
 *     line (done == total) from progress_end(); for pipelines.
 * PROGRESS_NONE (and -q) prints nothing.  Not thread-safe: call it from
 * one thread.
 */
#ifndef QIMG_UTIL_PROGRESS_H
#define QIMG_UTIL_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum progress_mode { PROGRESS_NONE, PROGRESS_HUMAN, PROGRESS_JSON };

struct progress {
	enum progress_mode mode;
	FILE *out;		/* stdout for HUMAN, stderr for JSON */
	double min_step;	/* percent: 1.0 for convert, 2.0 for compare */
	double current;		/* percent */
	double last_print;
	uint64_t done, total;	/* bytes, for JSON */
	double start;		/* monotonic seconds at init */
	double last_json;	/* when the last JSON line was written */
};

/* Start reporting; HUMAN prints "(0.00/100%)" at once, JSON waits for
 * the first progress_update (which knows the total). */
void progress_init(struct progress *p, enum progress_mode mode,
		   double min_step);
/* done of total bytes are finished (total 0 counts as complete). */
void progress_update(struct progress *p, uint64_t done, uint64_t total);
/*
 * The command is done: when ok, the final 100% line; then, for HUMAN, the
 * closing "\n" (also after a failure, so an error starts a new line).
 */
void progress_end(struct progress *p, bool ok);

#endif

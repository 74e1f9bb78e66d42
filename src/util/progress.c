/*
 * progress.c: progress lines in qemu-img's format or as JSON (see
 * progress.h).  qemu-img's rule, kept here: a value is printed when it is
 * 0, 100, or has moved by strictly more than the minimum step since the
 * last printed value; the end prints 100% once more and a newline.
 */
#include <stdbool.h>
#include <time.h>

#include "util/progress.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void print_human(struct progress *p)
{
	fprintf(p->out, "    (%3.2f/100%%)\r", p->current);
	fflush(p->out);
}

static void print_json(struct progress *p)
{
	double t = now();

	fprintf(p->out,
		"{\"bytes-done\": %llu, \"bytes-total\": %llu, "
		"\"elapsed\": %.3f}\n",
		(unsigned long long)p->done, (unsigned long long)p->total,
		t - p->start);
	fflush(p->out);
	p->last_json = t;
}

void progress_init(struct progress *p, enum progress_mode mode,
		   double min_step)
{
	p->mode = mode;
	p->out = mode == PROGRESS_JSON ? stderr : stdout;
	p->min_step = min_step;
	p->current = 0;
	p->last_print = 0;
	p->done = p->total = 0;
	p->start = now();
	p->last_json = p->start;
	if (mode == PROGRESS_HUMAN)
		print_human(p);
}

/* Set the percentage and print it if qemu-img's rule says so. */
static void set_percent(struct progress *p, double pct)
{
	if (pct > 100)
		pct = 100;
	p->current = pct;
	if (pct > p->last_print + p->min_step ||
	    pct < p->last_print - p->min_step || pct == 0 || pct == 100) {
		p->last_print = pct;
		print_human(p);
	}
}

void progress_update(struct progress *p, uint64_t done, uint64_t total)
{
	double pct = total ? 100.0 * (double)done / (double)total : 100.0;

	bool first = p->total == 0 && p->done == 0;

	p->done = done;
	p->total = total;
	if (p->mode == PROGRESS_HUMAN && done > 0) {
		set_percent(p, pct);	/* 0% was printed by progress_init */
	} else if (p->mode == PROGRESS_JSON && done < total) {
		/* The last line is progress_end's. */
		if (first || now() - p->last_json >= 0.1 ||
		    pct > p->last_print + p->min_step) {
			p->last_print = pct;
			print_json(p);
		}
	}
}

void progress_end(struct progress *p, bool ok)
{
	if (p->mode == PROGRESS_HUMAN) {
		if (ok)
			set_percent(p, 100);
		fputc('\n', p->out);
		fflush(p->out);
	} else if (p->mode == PROGRESS_JSON && ok) {
		p->done = p->total;
		print_json(p);
	}
	p->mode = PROGRESS_NONE;
}

/*
 * mailstowd_status.c - what the daemon is doing, in words: the `status`
 * reply of the control socket (text or JSON: profiles, last result, next
 * run, running, queued) and the one-line STATUS= sent to systemd.
 */
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "mailstowd.h"

static void
md_json_str(FILE *f, const char *s)
{
	const unsigned char *p;

	if (s == NULL) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void
md_json_time(FILE *f, int64_t t)
{
	char iso[32];

	if (t == 0) {
		fputs("null", f);
		return;
	}
	time_iso8601(t, iso);
	fprintf(f, "\"%s\"", iso);
}

static int64_t
md_prof_next_s(const struct md_prof *p)
{
	int64_t due = p->next_regular_ms;

	if (p->next_retry_ms != 0 && (due == 0 || p->next_retry_ms < due))
		due = p->next_retry_ms;
	return due == 0 ? 0 : (due + 999) / 1000;
}

static const char *
md_prof_state(const struct md_prof *p)
{
	if (p->job == NULL)
		return "idle";
	if (p->job->state == MD_J_HOSTWAIT)
		return "waiting_for_host";
	return p->job->running ? "running" : "queued";
}

static void
md_status_json_prof(FILE *f, const struct md_prof *p)
{
	fputs("{\"name\":", f);
	md_json_str(f, p->name);
	fputs(",\"schedule\":", f);
	md_json_str(f, p->schedule);
	fprintf(f, ",\"state\":\"%s\",", md_prof_state(p));
	if (p->job != NULL && p->job->state == MD_J_HOSTWAIT &&
	    p->job->host != NULL) {
		fputs("\"host\":", f);
		md_json_str(f, p->job->host->name);
		fputc(',', f);
	}
	if (p->job != NULL && p->job->running)
		fprintf(f, "\"sessions\":%u,", p->job->sessions);
	fputs("\"run\":", f);
	if (p->job != NULL && p->job->running)
		fprintf(f, "{\"run\":%" PRId64 ",\"trigger\":\"%s\",\"since\":",
		    p->job->run_id, p->job->trigger);
	else if (p->job != NULL)
		fprintf(f, "{\"run\":null,\"trigger\":\"%s\",\"since\":",
		    p->job->trigger);
	if (p->job != NULL) {
		md_json_time(f, p->job->running ? p->job->started_at :
		    p->job->queued_at);
		fputc('}', f);
	} else {
		fputs("null", f);
	}
	fputs(",\"last\":", f);
	if (p->last_run != 0) {
		fprintf(f, "{\"run\":%" PRId64 ",\"status\":", p->last_run);
		md_json_str(f, p->last_status);
		fputs(",\"finished\":", f);
		md_json_time(f, p->last_finished);
		fputc('}', f);
	} else {
		fputs("null", f);
	}
	fputs(",\"next\":", f);
	md_json_time(f, md_prof_next_s(p));
	fprintf(f, ",\"retries\":%u}", p->retries);
}

/* "hosts":[{"host","sessions","limit","waiting":[profiles]}] */
static void
md_status_json_hosts(struct md *md, FILE *f)
{
	const struct md_job *j;
	size_t i, n = 0;

	fputs("\"hosts\":[", f);
	for (i = 0; i < md->n_hosts; i++) {
		const struct md_host *h = md->hosts[i];

		if (h->held == 0 && h->reserved == 0 &&
		    TAILQ_EMPTY(&h->waiting))
			continue;
		fputs(n++ ? ",{\"host\":" : "{\"host\":", f);
		md_json_str(f, h->name);
		fprintf(f, ",\"sessions\":%u,\"limit\":%u,\"waiting\":[",
		    h->held, md->per_host_max);
		TAILQ_FOREACH(j, &h->waiting, hostq) {
			fputs(j != TAILQ_FIRST(&h->waiting) ? "," : "", f);
			md_json_str(f, j->prof->name);
		}
		fputs("]}", f);
	}
	fputc(']', f);
}

static void
md_status_json(struct md *md, FILE *f)
{
	size_t i, n;

	fprintf(f, "{\"pid\":%ld,\"config\":", (long)getpid());
	md_json_str(f, md->config_path);
	fputs(",\"archive\":", f);
	md_json_str(f, store_root(md->store));
	fputs(",\"started\":", f);
	md_json_time(f, md->started);
	fprintf(f, ",\"max_concurrent_runs\":%u,\"running\":%zu,"
	    "\"queued\":[", md->conf->conf->daemon.max_concurrent_runs,
	    ctl_queue_n_running(md->queue));
	for (i = 0; i < ctl_queue_n_queued(md->queue); i++) {
		struct md_job *j = ctl_queue_queued_at(md->queue, i);

		fputs(i ? "," : "", f);
		md_json_str(f, j->prof->name);
	}
	fputs("],", f);
	md_status_json_hosts(md, f);
	fputs(",\"profiles\":[\n", f);
	for (i = 0, n = 0; i < md->n_profs; i++) {
		if (md->profs[i]->removed && md->profs[i]->job == NULL)
			continue;
		fputs(n++ ? ",\n" : "", f);
		md_status_json_prof(f, md->profs[i]);
	}
	fputs("\n]}\n", f);
}

static void
md_status_text_prof(FILE *f, const struct md_prof *p)
{
	char name[128], host[300], t[32];

	str_escape(name, sizeof name, p->name, strlen(p->name));
	fprintf(f, "%-16s %-22s ", name, p->schedule);
	if (p->job != NULL && p->job->running) {
		time_iso8601(p->job->started_at, t);
		fprintf(f, "running run %" PRId64 " (%s) since %s", p->job->run_id,
		    p->job->trigger, t);
		if (p->job->sessions > 1)
			fprintf(f, " with %u sessions", p->job->sessions);
	} else if (p->job != NULL && p->job->state == MD_J_HOSTWAIT) {
		str_escape(host, sizeof host, p->job->host->name,
		    strlen(p->job->host->name));
		fprintf(f, "waiting for host %s (%s)", host, p->job->trigger);
	} else if (p->job != NULL) {
		fprintf(f, "queued (%s)", p->job->trigger);
	} else {
		fputs("idle", f);
	}
	if (p->last_run != 0) {
		time_iso8601(p->last_finished, t);
		fprintf(f, "; last: run %" PRId64 " %s at %s", p->last_run,
		    p->last_status, t);
	} else {
		fputs("; last: none", f);
	}
	if (md_prof_next_s(p) != 0) {
		time_iso8601(md_prof_next_s(p), t);
		fprintf(f, "; next: %s%s", t, p->next_retry_ms != 0 ?
		    " (retry)" : "");
	}
	fputc('\n', f);
}

int
md_status_print(struct md *md, bool json, FILE *f)
{
	char t[32];
	size_t i;

	if (json) {
		md_status_json(md, f);
		return 0;
	}
	time_iso8601(md->started, t);
	fprintf(f, "mailstowd pid %ld, up since %s, config %s, archive %s\n",
	    (long)getpid(), t, md->config_path, store_root(md->store));
	fprintf(f, "%zu running, %zu queued, %zu waiting for a host, at most "
	    "%u at once, %u sessions per host\n",
	    ctl_queue_n_running(md->queue), ctl_queue_n_queued(md->queue),
	    md_host_n_waiting(md), md->conf->conf->daemon.max_concurrent_runs,
	    md->per_host_max);
	for (i = 0; i < md->n_profs; i++)
		md_status_text_prof(f, md->profs[i]);
	return 0;
}

/* "running: a (run 3), b (run 4); 1 queued; next: c at TIME". */
int
md_status_line(struct md *md, char *buf, size_t len)
{
	const struct md_prof *next = NULL;
	size_t i, n = 0, off;
	char t[32];

	off = (size_t)snprintf(buf, len, "running:");
	for (i = 0; i < md->n_profs && off < len; i++) {
		const struct md_prof *p = md->profs[i];

		if (p->job != NULL && p->job->running)
			off += (size_t)snprintf(buf + off, len - off, "%s %s "
			    "(run %" PRId64 ")", n++ ? "," : "", p->name,
			    p->job->run_id);
		if (md_prof_next_s(p) != 0 && p->job == NULL && (next == NULL ||
		    md_prof_next_s(p) < md_prof_next_s(next)))
			next = p;
	}
	if (n == 0 && off < len)
		off += (size_t)snprintf(buf + off, len - off, " none");
	if (off < len)
		off += (size_t)snprintf(buf + off, len - off, "; %zu queued",
		    ctl_queue_n_queued(md->queue) + md_host_n_waiting(md));
	if (next != NULL && off < len) {
		time_iso8601(md_prof_next_s(next), t);
		snprintf(buf + off, len - off, "; next: %s at %s", next->name, t);
	}
	return 0;
}

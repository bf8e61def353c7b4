/*
 * Usage-plan quotas: period boundaries in UTC (days, Monday-based weeks, months with
 * leap years and the turn of the year), counting up to the limit, a new period starting
 * afresh, the offset of the first period, refunds; and the write-ahead file: counters
 * come back after a restart, corrupt records are reported and skipped, and the file is
 * compacted to one line per key at start-up.
 */
#include "base/quota.c"

#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

/* Monday 2024-01-01 00:00:00 UTC. */
#define MON_2024 1704067200
#define DAY 86400

/* Forgets everything the module holds, as a process restart would (the file stays). */
static void reset_state(void)
{
    for (int i = 0; i < nslots; i++) {
        free(slots[i]->key);
        free(slots[i]);
        slots[i] = NULL;
    }
    nslots = 0;
    for (int i = 0; i < nreplayed; i++)
        free(replayed[i].key);
    free(replayed);
    replayed = NULL;
    nreplayed = 0;
    free(wal_path);
    free(wal_dir);
    wal_path = wal_dir = NULL;
    if (wal_fd >= 0) close(wal_fd);
    wal_fd = -1;
    wal_bytes = 0;
}

static char *make_dir(void)
{
    static char dirs[8][64];
    static int n;
    char *d = dirs[n++ % 8];
    snprintf(d, 64, "/tmp/mgw-quota-XXXXXX");
    CHECK(mkdtemp(d) != NULL);
    return d;
}

static void remove_dir(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

/* A test's fixture: no quota state, a fresh state directory; teardown removes both. */
static char *setup(void)
{
    reset_state();
    return make_dir();
}

static void teardown(const char *dir)
{
    reset_state();
    remove_dir(dir);
}

/* The write-ahead log in dir. */
static const char *wal_of(const char *dir)
{
    static char wal[256];
    snprintf(wal, sizeof(wal), "%s/quotas.wal", dir);
    return wal;
}

static char *read_text(const char *path)
{
    static char buf[65536];
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; s && *s; s++)
        if (*s == '\n') n++;
    return n;
}

static int open_dir(const char *dir)
{
    mgw_buf_t err = {0};
    int rc = mgw_quota_open(dir, &err);
    if (rc != 0) printf("#   mgw_quota_open(%s): %.*s\n", dir, (int)err.n, err.p ? err.p : "");
    mgw_buf_free(&err);
    return rc;
}

/* Takes at `now` against limit/offset until refused (at most max); returns how many. */
static uint64_t take_all(mgw_quota_t *q, int period, uint64_t limit, uint64_t offset, time_t now,
                         uint64_t max)
{
    uint64_t n = 0, remaining, reset_s;
    while (n < max && mgw_quota_take(q, period, limit, offset, now, &remaining, &reset_s))
        n++;
    return n;
}

/* Periods ----------------------------------------------------------------------------- */

/* The ends of periods from..to-1 of a kind: each at 00:00:00 UTC on a Monday (weeks) or
 * on the 1st (months), each the first second of the next period. */
static void check_period_ends(int period, int64_t from, int64_t to)
{
    for (int64_t i = from; i < to; i++) {
        time_t end = mgw_quota_period_end(period, i);
        struct tm tm;
        gmtime_r(&end, &tm);
        int day_ok = period == MGW_QUOTA_WEEK ? tm.tm_wday == 1 : tm.tm_mday == 1;
        CHECK(day_ok && tm.tm_hour == 0 && tm.tm_min == 0 && tm.tm_sec == 0);
        CHECK(mgw_quota_period(period, end) == i + 1);
        CHECK(mgw_quota_period(period, end - 1) == i);
    }
}

static void test_day_boundaries(void)
{
    int64_t d = mgw_quota_period(MGW_QUOTA_DAY, MON_2024);
    CHECK(d == MON_2024 / DAY);
    CHECK(mgw_quota_period(MGW_QUOTA_DAY, MON_2024 - 1) == d - 1); /* 23:59:59 */
    CHECK(mgw_quota_period(MGW_QUOTA_DAY, MON_2024 + DAY - 1) == d);
    CHECK(mgw_quota_period(MGW_QUOTA_DAY, MON_2024 + DAY) == d + 1);
    CHECK(mgw_quota_period_end(MGW_QUOTA_DAY, d - 1) == MON_2024);
    CHECK(mgw_quota_period_end(MGW_QUOTA_DAY, d) == MON_2024 + DAY);
    /* The epoch, and the second before it. */
    CHECK(mgw_quota_period(MGW_QUOTA_DAY, 0) == 0);
    CHECK(mgw_quota_period_end(MGW_QUOTA_DAY, 0) == DAY);
    CHECK(mgw_quota_period(MGW_QUOTA_DAY, -1) == -1);
    CHECK(mgw_quota_period_end(MGW_QUOTA_DAY, -1) == 0);
}

static void test_week_boundaries(void)
{
    /* Weeks start on Monday 00:00 UTC: Sunday 23:59:59 is the week before. */
    int64_t w = mgw_quota_period(MGW_QUOTA_WEEK, MON_2024);
    CHECK(mgw_quota_period(MGW_QUOTA_WEEK, MON_2024 - 1) == w - 1);
    CHECK(mgw_quota_period_end(MGW_QUOTA_WEEK, w - 1) == MON_2024);
    CHECK(mgw_quota_period_end(MGW_QUOTA_WEEK, w) == MON_2024 + 7 * DAY);
    /* Every day from Monday to Sunday 23:59:59 is the same week. */
    for (int i = 0; i < 7; i++)
        CHECK(mgw_quota_period(MGW_QUOTA_WEEK, MON_2024 + i * DAY + 12345) == w);
    CHECK(mgw_quota_period(MGW_QUOTA_WEEK, MON_2024 + 7 * DAY - 1) == w);
    CHECK(mgw_quota_period(MGW_QUOTA_WEEK, MON_2024 + 7 * DAY) == w + 1);
    /* 1970-01-01 was a Thursday: its week started Monday 1969-12-29, ends Monday 1970-01-05. */
    int64_t w0 = mgw_quota_period(MGW_QUOTA_WEEK, 0);
    CHECK(mgw_quota_period_end(MGW_QUOTA_WEEK, w0) == 4 * DAY);
    CHECK(mgw_quota_period(MGW_QUOTA_WEEK, 4 * DAY - 1) == w0);
    CHECK(mgw_quota_period(MGW_QUOTA_WEEK, 4 * DAY) == w0 + 1);
    CHECK(mgw_quota_period(MGW_QUOTA_WEEK, -3 * DAY) == w0); /* Monday 1969-12-29 */
    /* Sunday 1969-12-28 is the week before. */
    CHECK(mgw_quota_period(MGW_QUOTA_WEEK, -3 * DAY - 1) == w0 - 1);
    CHECK(mgw_quota_period_end(MGW_QUOTA_WEEK, w0 - 1) == -3 * DAY);
    /* The end of a week is always a Monday 00:00 UTC. */
    check_period_ends(MGW_QUOTA_WEEK, w - 100, w + 100);
}

static void test_month_boundaries(void)
{
    /* 2028 is a leap year: Feb 28 and Feb 29 are February, Mar 1 is not. */
    time_t feb28_end = 1835395199, feb29 = 1835395200, feb29_end = 1835481599, mar1 = 1835481600;
    int64_t feb = mgw_quota_period(MGW_QUOTA_MONTH, feb29);
    CHECK(feb == (2028 - 1970) * 12 + 1);
    CHECK(mgw_quota_period(MGW_QUOTA_MONTH, feb28_end) == feb);
    CHECK(mgw_quota_period(MGW_QUOTA_MONTH, feb29_end) == feb);
    CHECK(mgw_quota_period(MGW_QUOTA_MONTH, mar1) == feb + 1);
    CHECK(mgw_quota_period_end(MGW_QUOTA_MONTH, feb) == mar1);
    /* 2027 is not: February ends after the 28th. */
    time_t feb28_2027_end = 1803859199, mar1_2027 = 1803859200;
    int64_t feb27 = mgw_quota_period(MGW_QUOTA_MONTH, feb28_2027_end);
    CHECK(mgw_quota_period(MGW_QUOTA_MONTH, mar1_2027) == feb27 + 1);
    CHECK(mgw_quota_period_end(MGW_QUOTA_MONTH, feb27) == mar1_2027);
    /* December 2027 to January 2028. */
    time_t dec31_end = 1830297599, jan1 = 1830297600;
    int64_t dec = mgw_quota_period(MGW_QUOTA_MONTH, dec31_end);
    CHECK(dec == (2027 - 1970) * 12 + 11);
    CHECK(mgw_quota_period(MGW_QUOTA_MONTH, jan1) == dec + 1);
    CHECK(mgw_quota_period_end(MGW_QUOTA_MONTH, dec) == jan1);
    CHECK(mgw_quota_period_end(MGW_QUOTA_MONTH, dec + 1) == jan1 + 31 * DAY);
    /* The epoch: January 1970 ends on February 1st; December 1969 ends at 0. */
    CHECK(mgw_quota_period(MGW_QUOTA_MONTH, 0) == 0);
    CHECK(mgw_quota_period_end(MGW_QUOTA_MONTH, 0) == 31 * DAY);
    CHECK(mgw_quota_period(MGW_QUOTA_MONTH, -1) == -1);
    CHECK(mgw_quota_period_end(MGW_QUOTA_MONTH, -1) == 0);
    /* Every month end for 40 years is the 1st at 00:00 and begins the next index. */
    check_period_ends(MGW_QUOTA_MONTH, 600, 1080);
}

/* Periods are UTC whatever the local time zone is. */
static void test_periods_ignore_time_zone(void)
{
    const char *old = getenv("TZ");
    char saved[64] = "";
    if (old) snprintf(saved, sizeof(saved), "%s", old);
    static const char *const zones[] = {"Pacific/Kiritimati", "America/New_York", "Asia/Kolkata"};
    for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
        setenv("TZ", zones[z], 1);
        tzset();
        CHECK(mgw_quota_period(MGW_QUOTA_DAY, MON_2024 - 1) == MON_2024 / DAY - 1);
        CHECK(mgw_quota_period(MGW_QUOTA_DAY, MON_2024) == MON_2024 / DAY);
        int64_t w = mgw_quota_period(MGW_QUOTA_WEEK, MON_2024);
        CHECK(mgw_quota_period(MGW_QUOTA_WEEK, MON_2024 - 1) == w - 1);
        CHECK(mgw_quota_period_end(MGW_QUOTA_WEEK, w - 1) == MON_2024);
        CHECK(mgw_quota_period(MGW_QUOTA_MONTH, 1830297599) == (2027 - 1970) * 12 + 11);
        CHECK(mgw_quota_period(MGW_QUOTA_MONTH, 1830297600) == (2028 - 1970) * 12);
        CHECK(mgw_quota_period_end(MGW_QUOTA_MONTH, (2028 - 1970) * 12 + 1) == 1835481600);
    }
    if (old)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
}

/* Counting ------------------------------------------------------------------------------ */

static void test_take_up_to_limit(void)
{
    mgw_quota_t *q = mgw_quota_slot("take|day");
    CHECK(q != NULL);
    CHECK(mgw_quota_slot("take|day") == q);
    uint64_t remaining = 99, reset_s = 0;
    time_t now = MON_2024 + 100;
    for (uint64_t i = 1; i <= 3; i++) {
        CHECK(mgw_quota_take(q, MGW_QUOTA_DAY, 3, 0, now, &remaining, &reset_s) == 1);
        CHECK(remaining == 3 - i);
        CHECK(reset_s == DAY - 100); /* to midnight UTC */
    }
    remaining = 99;
    CHECK(mgw_quota_take(q, MGW_QUOTA_DAY, 3, 0, now, &remaining, &reset_s) == 0);
    CHECK(remaining == 0);
    CHECK(reset_s == DAY - 100);
    /* Refused requests are not counted: still refused at the end of the day... */
    CHECK(mgw_quota_take(q, MGW_QUOTA_DAY, 3, 0, MON_2024 + DAY - 1, &remaining, &reset_s) == 0);
    CHECK(reset_s == 1);
    /* ...and the next day starts from zero. */
    CHECK(mgw_quota_take(q, MGW_QUOTA_DAY, 3, 0, MON_2024 + DAY, &remaining, &reset_s) == 1);
    CHECK(remaining == 2);
    CHECK(reset_s == DAY);
    CHECK(take_all(q, MGW_QUOTA_DAY, 3, 0, MON_2024 + DAY + 5, 100) == 2);
    /* A day skipped entirely: full again. */
    CHECK(take_all(q, MGW_QUOTA_DAY, 3, 0, MON_2024 + 3 * DAY, 100) == 3);
}

static void test_week_and_month_periods(void)
{
    mgw_quota_t *w = mgw_quota_slot("take|week");
    uint64_t remaining, reset_s;
    /* Sunday 2024-01-07 23:59:59 and Monday 2024-01-08 00:00:00. */
    time_t sun = MON_2024 + 7 * DAY - 1, mon = MON_2024 + 7 * DAY;
    CHECK(mgw_quota_take(w, MGW_QUOTA_WEEK, 2, 0, MON_2024, &remaining, &reset_s) == 1);
    CHECK(reset_s == 7 * DAY);
    CHECK(mgw_quota_take(w, MGW_QUOTA_WEEK, 2, 0, sun, &remaining, &reset_s) == 1);
    CHECK(remaining == 0);
    CHECK(reset_s == 1);
    CHECK(mgw_quota_take(w, MGW_QUOTA_WEEK, 2, 0, sun, &remaining, &reset_s) == 0);
    CHECK(take_all(w, MGW_QUOTA_WEEK, 2, 0, mon, 100) == 2);

    mgw_quota_t *m = mgw_quota_slot("take|month");
    time_t feb29 = 1835395200, mar1 = 1835481600;
    CHECK(mgw_quota_take(m, MGW_QUOTA_MONTH, 1, 0, feb29, &remaining, &reset_s) == 1);
    CHECK(reset_s == DAY);
    CHECK(mgw_quota_take(m, MGW_QUOTA_MONTH, 1, 0, mar1 - 1, &remaining, &reset_s) == 0);
    CHECK(reset_s == 1);
    CHECK(mgw_quota_take(m, MGW_QUOTA_MONTH, 1, 0, mar1, &remaining, &reset_s) == 1);
    CHECK(reset_s == 31 * DAY); /* March */
}

static void test_offset_only_first_period(void)
{
    mgw_quota_t *q = mgw_quota_slot("offset|day");
    uint64_t remaining, reset_s;
    /* First used on the third day: that day allows 5 - 2. */
    time_t first = MON_2024 + 2 * DAY + 600;
    CHECK(mgw_quota_take(q, MGW_QUOTA_DAY, 5, 2, first, &remaining, &reset_s) == 1);
    CHECK(remaining == 2);
    CHECK(take_all(q, MGW_QUOTA_DAY, 5, 2, first, 100) == 2);
    CHECK(mgw_quota_take(q, MGW_QUOTA_DAY, 5, 2, first, &remaining, &reset_s) == 0);
    /* The following days: the whole limit. */
    CHECK(mgw_quota_take(q, MGW_QUOTA_DAY, 5, 2, first + DAY, &remaining, &reset_s) == 1);
    CHECK(remaining == 4);
    CHECK(take_all(q, MGW_QUOTA_DAY, 5, 2, first + DAY, 100) == 4);
    CHECK(take_all(q, MGW_QUOTA_DAY, 5, 2, first + 2 * DAY, 100) == 5);
    /* Monthly, with an offset, first used on the last day of the month. */
    mgw_quota_t *m = mgw_quota_slot("offset|month");
    time_t jan31 = 1830297600 + 30 * DAY;
    CHECK(take_all(m, MGW_QUOTA_MONTH, 10, 9, jan31, 100) == 1);
    CHECK(take_all(m, MGW_QUOTA_MONTH, 10, 9, jan31 + DAY, 100) == 10);
}

static void test_refund(void)
{
    mgw_quota_t *q = mgw_quota_slot("refund|day");
    uint64_t remaining, reset_s;
    CHECK(take_all(q, MGW_QUOTA_DAY, 4, 0, MON_2024, 100) == 4);
    mgw_quota_refund(q);
    CHECK(mgw_quota_take(q, MGW_QUOTA_DAY, 4, 0, MON_2024, &remaining, &reset_s) == 1);
    CHECK(remaining == 0);
    CHECK(mgw_quota_take(q, MGW_QUOTA_DAY, 4, 0, MON_2024, &remaining, &reset_s) == 0);
    /* A refund after a few takes: remaining goes up by exactly one. */
    mgw_quota_t *r = mgw_quota_slot("refund2|day");
    CHECK(take_all(r, MGW_QUOTA_DAY, 10, 0, MON_2024, 3) == 3);
    mgw_quota_refund(r);
    CHECK(mgw_quota_take(r, MGW_QUOTA_DAY, 10, 0, MON_2024, &remaining, &reset_s) == 1);
    CHECK(remaining == 7);
}

typedef struct {
    mgw_quota_t *q;
    uint64_t admitted;
    pthread_barrier_t *start;
} taker_t;

static void *taker(void *arg)
{
    taker_t *t = arg;
    pthread_barrier_wait(t->start);
    t->admitted = take_all(t->q, MGW_QUOTA_DAY, 1000, 0, MON_2024, 5000);
    for (int i = 0; i < 1000; i++) /* keep trying after the first refusal */
        t->admitted += take_all(t->q, MGW_QUOTA_DAY, 1000, 0, MON_2024, 1);
    return NULL;
}

/* Four threads counting against one slot: exactly the limit is admitted. */
static void test_threads(void)
{
    enum { N = 4 };
    mgw_quota_t *q = mgw_quota_slot("threads|day");
    pthread_t th[N];
    taker_t ts[N];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, N);
    for (int i = 0; i < N; i++) {
        ts[i] = (taker_t){q, 0, &start};
        pthread_create(&th[i], NULL, taker, &ts[i]);
    }
    uint64_t total = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        total += ts[i].admitted;
    }
    pthread_barrier_destroy(&start);
    CHECK(total == 1000);
}

/* Persistence --------------------------------------------------------------------------- */

/* Captures what the module logs to stderr while fn runs. */
static char *with_stderr(const char *dir, int (*fn)(const char *), const char *arg, int *rc)
{
    static char out[8192];
    char path[256];
    snprintf(path, sizeof(path), "%s/stderr.txt", dir);
    fflush(stderr);
    int saved = dup(2);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
    *rc = fn(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    snprintf(out, sizeof(out), "%s", read_text(path) ? read_text(path) : "");
    unlink(path);
    return out;
}

static void test_restart_restores_counts(void)
{
    char *dir = setup();
    const char *wal = wal_of(dir);
    CHECK(open_dir(dir) == 0);
    CHECK(access(wal, F_OK) == 0);
    mgw_quota_t *q = mgw_quota_slot("quota|api|plan|k1|day");
    mgw_quota_t *o = mgw_quota_slot("quota|api|plan|k2|day");
    mgw_quota_slot("quota|api|plan|unused|day");
    CHECK(take_all(q, MGW_QUOTA_DAY, 10, 0, MON_2024 + 10, 3) == 3);
    /* k2 has an offset: its first period allows 5 - 3. */
    CHECK(take_all(o, MGW_QUOTA_DAY, 5, 3, MON_2024 + 10, 100) == 2);
    mgw_quota_flush();
    char *text = read_text(wal);
    CHECK(count_lines(text) == 2); /* only what changed */
    CHECK(text && strstr(text, "quota|api|plan|k1|day\t") == text);
    /* Nothing changed: nothing appended. */
    size_t len = strlen(text ? text : "");
    mgw_quota_flush();
    CHECK(strlen(read_text(wal)) == len);

    /* Restart. */
    reset_state();
    CHECK(open_dir(dir) == 0);
    q = mgw_quota_slot("quota|api|plan|k1|day");
    uint64_t remaining, reset_s;
    CHECK(mgw_quota_take(q, MGW_QUOTA_DAY, 10, 0, MON_2024 + 20, &remaining, &reset_s) == 1);
    CHECK(remaining == 6); /* 3 before the restart + this one */
    /* The offset applied to the first day only, also after the restart. */
    o = mgw_quota_slot("quota|api|plan|k2|day");
    CHECK(take_all(o, MGW_QUOTA_DAY, 5, 3, MON_2024 + 20, 100) == 0);
    CHECK(take_all(o, MGW_QUOTA_DAY, 5, 3, MON_2024 + DAY, 100) == 5);
    /* A key that was never counted starts at zero. */
    mgw_quota_t *u = mgw_quota_slot("quota|api|plan|unused|day");
    CHECK(take_all(u, MGW_QUOTA_DAY, 4, 0, MON_2024 + 20, 100) == 4);
    /* The next day the restored count no longer applies. */
    CHECK(take_all(q, MGW_QUOTA_DAY, 10, 0, MON_2024 + DAY + 1, 100) == 10);
    teardown(dir);
}

static void test_restart_after_many_flushes_compacts(void)
{
    char *dir = setup();
    const char *wal = wal_of(dir);
    CHECK(open_dir(dir) == 0);
    mgw_quota_t *a = mgw_quota_slot("quota|a|day");
    mgw_quota_t *b = mgw_quota_slot("quota|b|day");
    for (int i = 0; i < 5; i++) {
        CHECK(take_all(a, MGW_QUOTA_DAY, 100, 0, MON_2024, 2) == 2);
        CHECK(take_all(b, MGW_QUOTA_DAY, 100, 0, MON_2024, 1) == 1);
        mgw_quota_flush();
    }
    CHECK(count_lines(read_text(wal)) == 10);
    reset_state();
    CHECK(open_dir(dir) == 0);
    /* One line per key, with the last counts. */
    CHECK(count_lines(read_text(wal)) == 2);
    uint64_t remaining, reset_s;
    a = mgw_quota_slot("quota|a|day");
    b = mgw_quota_slot("quota|b|day");
    CHECK(mgw_quota_take(a, MGW_QUOTA_DAY, 100, 0, MON_2024, &remaining, &reset_s) == 1);
    CHECK(remaining == 89);
    CHECK(mgw_quota_take(b, MGW_QUOTA_DAY, 100, 0, MON_2024, &remaining, &reset_s) == 1);
    CHECK(remaining == 94);
    /* And again after a second restart without any change. */
    reset_state();
    CHECK(open_dir(dir) == 0);
    CHECK(count_lines(read_text(wal)) == 2);
    a = mgw_quota_slot("quota|a|day");
    CHECK(mgw_quota_take(a, MGW_QUOTA_DAY, 100, 0, MON_2024, &remaining, &reset_s) == 1);
    CHECK(remaining == 89); /* the take after the last flush was never written */
    teardown(dir);
}

/* A refund reaches the file too: after a restart the count is the refunded one. */
static void test_refund_persisted(void)
{
    char *dir = setup();
    CHECK(open_dir(dir) == 0);
    mgw_quota_t *q = mgw_quota_slot("quota|refund|day");
    CHECK(take_all(q, MGW_QUOTA_DAY, 10, 0, MON_2024, 3) == 3);
    mgw_quota_flush();
    mgw_quota_refund(q);
    mgw_quota_flush();
    reset_state();
    CHECK(open_dir(dir) == 0);
    q = mgw_quota_slot("quota|refund|day");
    uint64_t remaining, reset_s;
    CHECK(mgw_quota_take(q, MGW_QUOTA_DAY, 10, 0, MON_2024, &remaining, &reset_s) == 1);
    CHECK(remaining == 7); /* 2 counted + this one */
    teardown(dir);
}

static void append(FILE *f, const char *key, int64_t period, uint64_t count, int64_t first)
{
    char line[1024];
    int n = format_record(line, sizeof(line), key, period, count, first);
    CHECK(n > 0);
    fwrite(line, 1, (size_t)n, f);
}

static void test_corrupt_records_skipped(void)
{
    char *dir = setup();
    const char *wal = wal_of(dir);
    int64_t day = MON_2024 / DAY;
    FILE *f = fopen(wal, "w");
    CHECK(f != NULL);
    append(f, "quota|k1|day", day, 2, day);
    /* A valid-looking record whose count was changed after its checksum. */
    char line[1024];
    int n = format_record(line, sizeof(line), "quota|k2|day", day, 7, day);
    char *cnt = strstr(line, "\t7\t");
    CHECK(cnt != NULL && n > 0);
    if (cnt) cnt[1] = '1';
    fwrite(line, 1, (size_t)n, f);
    fputs("garbage without any tab\n", f);
    fputs("\n", f);
    fputs("quota|k5|day\tnot\ta\tnumber\tdeadbeef\n", f);
    for (int i = 0; i < 2000; i++) /* one line longer than any record */
        fputc('x', f);
    fputc('\n', f);
    append(f, "quota|k3|day", day, 4, day);
    append(f, "quota|k1|day", day, 3, day); /* the later record of k1 wins */
    /* A last record torn by a crash: no newline, part of its checksum missing. */
    n = format_record(line, sizeof(line), "quota|k4|day", day, 9, day);
    fwrite(line, 1, (size_t)n - 4, f);
    fclose(f);

    int rc;
    char *log = with_stderr(dir, open_dir, dir, &rc);
    CHECK(rc == 0); /* the gateway still starts */
    CHECK(strstr(log, "corrupt quota record") != NULL);
    CHECK(strstr(log, wal) != NULL);
    uint64_t remaining, reset_s;
    mgw_quota_t *k1 = mgw_quota_slot("quota|k1|day");
    CHECK(mgw_quota_take(k1, MGW_QUOTA_DAY, 10, 0, MON_2024, &remaining, &reset_s) == 1);
    CHECK(remaining == 6);
    mgw_quota_t *k3 = mgw_quota_slot("quota|k3|day");
    CHECK(mgw_quota_take(k3, MGW_QUOTA_DAY, 10, 0, MON_2024, &remaining, &reset_s) == 1);
    CHECK(remaining == 5);
    /* The skipped records count nothing. */
    mgw_quota_t *k2 = mgw_quota_slot("quota|k2|day");
    CHECK(mgw_quota_take(k2, MGW_QUOTA_DAY, 10, 0, MON_2024, &remaining, &reset_s) == 1);
    CHECK(remaining == 9);
    mgw_quota_t *k4 = mgw_quota_slot("quota|k4|day");
    CHECK(mgw_quota_take(k4, MGW_QUOTA_DAY, 10, 0, MON_2024, &remaining, &reset_s) == 1);
    CHECK(remaining == 9);
    /* Compacted: the two good keys, one line each, every line valid. */
    char *text = read_text(wal);
    CHECK(count_lines(text) == 2);
    CHECK(text && strstr(text, "quota|k1|day\t") != NULL);
    CHECK(text && strstr(text, "quota|k3|day\t") != NULL);
    CHECK(text && strstr(text, "garbage") == NULL);
    /* What was flushed after the corrupt start-up replays cleanly. */
    mgw_quota_flush();
    reset_state();
    log = with_stderr(dir, open_dir, dir, &rc);
    CHECK(rc == 0);
    CHECK(strstr(log, "corrupt") == NULL);
    k1 = mgw_quota_slot("quota|k1|day");
    CHECK(mgw_quota_take(k1, MGW_QUOTA_DAY, 10, 0, MON_2024, &remaining, &reset_s) == 1);
    CHECK(remaining == 5);
    teardown(dir);
}

/* A file that is nothing but binary noise: reported, skipped, and the gateway starts. */
static void test_binary_file(void)
{
    char *dir = setup();
    const char *wal = wal_of(dir);
    FILE *f = fopen(wal, "w");
    unsigned x = 12345;
    for (int i = 0; i < 20000; i++) {
        x = x * 1103515245u + 12345u;
        fputc((int)(x >> 16) & 0xff, f);
    }
    fclose(f);
    int rc;
    char *log = with_stderr(dir, open_dir, dir, &rc);
    CHECK(rc == 0);
    CHECK(strstr(log, "corrupt") != NULL);
    CHECK(count_lines(read_text(wal)) == 0);
    mgw_quota_t *q = mgw_quota_slot("quota|noise|day");
    CHECK(take_all(q, MGW_QUOTA_DAY, 3, 0, MON_2024, 100) == 3);
    teardown(dir);
}

/* The state directory is created when missing; one that cannot be is an error. */
static void test_open_creates_dir(void)
{
    char *dir = setup();
    char sub[256];
    snprintf(sub, sizeof(sub), "%s/state", dir);
    CHECK(open_dir(sub) == 0);
    struct stat st;
    CHECK(stat(sub, &st) == 0 && S_ISDIR(st.st_mode));
    reset_state();
    mgw_buf_t err = {0};
    char bad[300];
    snprintf(bad, sizeof(bad), "%s/missing/parent", dir);
    CHECK(mgw_quota_open(bad, &err) == MGW_EIO);
    CHECK(err.p != NULL && strstr(err.p, bad) != NULL);
    mgw_buf_free(&err);
    teardown(dir);
}

/*
 * Compaction while running (after many appends) keeps the counters of keys read at
 * start-up that have no slot (yet), e.g. a plan left out of the configuration for a
 * while: nothing lost.
 */
static void test_live_compaction_keeps_everything(void)
{
    char *dir = setup();
    const char *wal = wal_of(dir);
    int64_t day = MON_2024 / DAY;
    FILE *f = fopen(wal, "w");
    append(f, "quota|orphan|day", day, 4, day);
    fclose(f);
    CHECK(open_dir(dir) == 0);
    mgw_quota_t *q = mgw_quota_slot("quota|live|day");
    for (int i = 0; i < 3; i++) {
        CHECK(take_all(q, MGW_QUOTA_DAY, 100, 0, MON_2024, 1) == 1);
        mgw_quota_flush();
    }
    /* As if 4 MB had been appended: the next flush rewrites the file from memory. */
    wal_bytes = COMPACT_BYTES + 1;
    CHECK(take_all(q, MGW_QUOTA_DAY, 100, 0, MON_2024, 1) == 1);
    mgw_quota_flush();
    CHECK(wal_bytes < COMPACT_BYTES);
    CHECK(count_lines(read_text(wal)) <= 3);
    reset_state();
    CHECK(open_dir(dir) == 0);
    uint64_t remaining, reset_s;
    q = mgw_quota_slot("quota|live|day");
    CHECK(mgw_quota_take(q, MGW_QUOTA_DAY, 100, 0, MON_2024, &remaining, &reset_s) == 1);
    CHECK(remaining == 95);
    mgw_quota_t *o = mgw_quota_slot("quota|orphan|day");
    CHECK(mgw_quota_take(o, MGW_QUOTA_DAY, 10, 0, MON_2024, &remaining, &reset_s) == 1);
    CHECK(remaining == 5);
    teardown(dir);
}

/* Other nodes' counts (cluster/quota.c) -------------------------------------------------- */

static void test_others_count_against_the_limit(void)
{
    char *dir = setup();
    mgw_quota_t *q = mgw_quota_slot("cl|day");
    int64_t day = mgw_quota_period(MGW_QUOTA_DAY, MON_2024);
    uint64_t remaining, reset_s;
    CHECK(mgw_quota_others(q, day) == 0);
    mgw_quota_set_others(q, day, 6);
    CHECK(mgw_quota_others(q, day) == 6);
    CHECK(mgw_quota_take(q, MGW_QUOTA_DAY, 10, 0, MON_2024, &remaining, &reset_s) == 1);
    CHECK(remaining == 3); /* 10 - 6 others - 1 */
    CHECK(take_all(q, MGW_QUOTA_DAY, 10, 0, MON_2024, 100) == 3);
    /* The others' count of another period does not apply: the next day starts afresh. */
    CHECK(mgw_quota_others(q, day + 1) == 0);
    CHECK(take_all(q, MGW_QUOTA_DAY, 10, 0, MON_2024 + DAY, 100) == 10);
    /* Others over the limit: nothing is admitted, remaining is 0, not an underflow. */
    mgw_quota_t *o = mgw_quota_slot("cl2|day");
    mgw_quota_set_others(o, day, 50);
    CHECK(mgw_quota_take(o, MGW_QUOTA_DAY, 10, 0, MON_2024, &remaining, &reset_s) == 0);
    CHECK(remaining == 0);
    teardown(dir);
}

static void test_own_reports_changes(void)
{
    char *dir = setup();
    mgw_quota_t *q = mgw_quota_slot("own|day");
    mgw_quota_set_kind(q, MGW_QUOTA_DAY);
    CHECK(mgw_quota_kind(q) == MGW_QUOTA_DAY);
    CHECK(mgw_quota_nslots() == 1 && mgw_quota_at(0) == q && mgw_quota_at(1) == NULL);
    CHECK_STR(mgw_quota_key(q), "own|day");
    int64_t period;
    uint64_t count;
    CHECK(mgw_quota_own(q, &period, &count) == 0); /* never used */
    CHECK(take_all(q, MGW_QUOTA_DAY, 10, 0, MON_2024, 4) == 4);
    CHECK(mgw_quota_own(q, &period, &count) == 1);
    CHECK(period == mgw_quota_period(MGW_QUOTA_DAY, MON_2024) && count == 4);
    CHECK(mgw_quota_own(q, &period, &count) == 0); /* reported once */
    mgw_quota_refund(q);
    CHECK(mgw_quota_own(q, &period, &count) == 1 && count == 3);
    mgw_quota_mark(q);
    CHECK(mgw_quota_own(q, &period, &count) == 1);
    mgw_quota_mark_all();
    CHECK(mgw_quota_own(q, &period, &count) == 1);
    /* Reporting to Redis and appending to the file are apart: each sees the change. */
    CHECK(open_dir(dir) == 0);
    CHECK(take_all(q, MGW_QUOTA_DAY, 10, 0, MON_2024, 1) == 1);
    CHECK(mgw_quota_own(q, &period, &count) == 1 && count == 4);
    mgw_quota_flush();
    char *text = read_text(wal_of(dir));
    CHECK(count_lines(text) == 1);
    teardown(dir);
}

static void test_adopt_and_replayed_slots_report(void)
{
    char *dir = setup();
    CHECK(open_dir(dir) == 0);
    mgw_quota_t *q = mgw_quota_slot("adopt|day");
    int64_t day = mgw_quota_period(MGW_QUOTA_DAY, MON_2024);
    CHECK(take_all(q, MGW_QUOTA_DAY, 10, 0, MON_2024, 2) == 2);
    mgw_quota_adopt(q, day, 3); /* Redis knew 5 of this node's */
    CHECK(take_all(q, MGW_QUOTA_DAY, 10, 0, MON_2024, 100) == 5);
    mgw_quota_adopt(q, day - 1, 3); /* an older period's: ignored */
    int64_t period;
    uint64_t count;
    mgw_quota_own(q, &period, &count);
    CHECK(period == day && count == 10);
    mgw_quota_flush();
    /* After a restart a replayed slot reads as changed, so that Redis gets its count. */
    reset_state();
    CHECK(open_dir(dir) == 0);
    q = mgw_quota_slot("adopt|day");
    CHECK(mgw_quota_own(q, &period, &count) == 1 && count == 10 && period == day);
    teardown(dir);
}

int main(void)
{
    RUN(test_day_boundaries);
    RUN(test_week_boundaries);
    RUN(test_month_boundaries);
    RUN(test_periods_ignore_time_zone);
    RUN(test_take_up_to_limit);
    RUN(test_week_and_month_periods);
    RUN(test_offset_only_first_period);
    RUN(test_refund);
    RUN(test_threads);
    RUN(test_restart_restores_counts);
    RUN(test_restart_after_many_flushes_compacts);
    RUN(test_refund_persisted);
    RUN(test_corrupt_records_skipped);
    RUN(test_binary_file);
    RUN(test_open_creates_dir);
    RUN(test_live_compaction_keeps_everything);
    RUN(test_others_count_against_the_limit);
    RUN(test_own_reports_changes);
    RUN(test_adopt_and_replayed_slots_report);
    reset_state();
    return DONE();
}

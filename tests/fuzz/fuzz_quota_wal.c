/*
 * The quota write-ahead file reader (runtime/base/quota.c, included here to reach its static
 * replay and compaction): the input is a quotas.wal as found at start-up. It is replayed,
 * compacted into a file as mgw_quota_open() does, and the compacted file is replayed
 * again: the second replay must give exactly the records the first kept (a compaction
 * never loses or changes a counter). A slot for each of the first records then takes a
 * request, as the first request of a key after a restart does.
 */
#include "base/quota.c"

#include <limits.h>

#include "fuzz.h"

static char dir[PATH_MAX];

static void forget(void)
{
    for (int i = 0; i < nreplayed; i++)
        free(replayed[i].key);
    free(replayed);
    replayed = NULL;
    nreplayed = 0;
    for (int i = 0; i < nslots; i++) {
        free(slots[i]->key);
        free(slots[i]);
    }
    nslots = 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(dir, sizeof(dir), "%s", fuzz_scratch_dir("wal"));
    size_t n = strlen(dir) + 16;
    wal_path = mgw_malloc(n);
    snprintf(wal_path, n, "%s/quotas.wal", dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fmemopen((void *)data, size, "r");
    if (f == NULL) return 0; /* size 0 */
    replay(f, "fuzz.wal");
    fclose(f);
    int n = nreplayed;
    record_t *first = mgw_malloc(sizeof(*first) * (size_t)(n ? n : 1));
    if (n) memcpy(first, replayed, sizeof(*first) * (size_t)n);
    for (int i = 0; i < n; i++) {
        FUZZ_CHECK(strchr(first[i].key, '\t') == NULL && strchr(first[i].key, '\n') == NULL);
        first[i].key = mgw_strdup(first[i].key);
    }

    FUZZ_CHECK(compact(dir) == 0);
    forget();
    f = fopen(wal_path, "r");
    FUZZ_CHECK(f != NULL);
    replay(f, wal_path);
    fclose(f);
    FUZZ_CHECK(nreplayed == n);
    for (int i = 0; i < n; i++) {
        FUZZ_CHECK(strcmp(replayed[i].key, first[i].key) == 0);
        FUZZ_CHECK(replayed[i].period == first[i].period);
        FUZZ_CHECK(replayed[i].count == first[i].count);
        FUZZ_CHECK(replayed[i].first == first[i].first);
    }

    for (int i = 0; i < n && i < 4; i++) {
        mgw_quota_t *q = mgw_quota_slot(first[i].key);
        FUZZ_CHECK(q != NULL);
        uint64_t remaining, reset_s;
        (void)mgw_quota_take(q, i % 3, 1000, 10, 1700000000, &remaining, &reset_s);
    }
    for (int i = 0; i < n; i++)
        free(first[i].key);
    free(first);
    forget();
    return 0;
}

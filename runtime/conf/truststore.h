/*
 * Truststore versions. Every distinct content a domain's mTLS truststore file has had is
 * kept as state_dir/truststores/<host>/v<N>.pem, so that a rotation can be undone in one
 * command (`moongate truststore rollback DOMAIN`), which API Gateway users do by hand
 * with S3 object versions. The version served is the configuration's mtls.version pin,
 * else a rollback pin (the file "pinned" beside the versions), else the configured file.
 */
#ifndef MGW_TRUSTSTORE_H
#define MGW_TRUSTSTORE_H

#include <stddef.h>

/*
 * Records file's content as a new version when no version has it yet (each distinct
 * content once, numbered by first appearance) and appends its version to the history
 * when it changed, then chooses what to serve: writes its path to out and its version
 * number to *version. pin > 0 serves that version. Returns 0, or -1 with the reason in err.
 */
int mgw_truststore_resolve(const char *state_dir, const char *host, const char *file, int pin,
                           char *out, size_t outlen, int *version, char *err, size_t errlen);

/* Pins the version served before the one served now (one step back in the history per
 * call). Returns 0 and *to, or -1 with err. */
int mgw_truststore_rollback(const char *state_dir, const char *host, const char *file, int *to,
                            char *err, size_t errlen);

/* Removes a rollback pin: the configured file is served again. Returns 0 or -1. */
int mgw_truststore_unpin(const char *state_dir, const char *host, char *err, size_t errlen);

#endif

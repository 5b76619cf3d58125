/* The broker's side of a capture's TLS secrets.
 *
 * Loaded into the rig's Mosquitto with LD_PRELOAD while captures are on (rig/broker/keylog.py
 * builds it; Broker(tls_keys=True) loads it). Every TLS context the broker makes gets OpenSSL's
 * own key-log callback (SSL_CTX_set_keylog_callback), which hands over each session's secrets as
 * NSS key-log lines; they are appended to the file $HIL_BROKER_KEYLOG names (created 0600, never
 * through a symbolic link), one write per line, the file opened anew for each line so that the
 * rig may take the file away between cells. Mosquitto itself is unchanged: this only asks
 * OpenSSL for what it already offers to any application.
 *
 * Why: a firmware that is not ours cannot be asked for its secrets, and one that connects by
 * itself at boot (a Mongoose OS app, an esp-mqtt app reading NVS) has connected before the rig
 * could ask. The broker is one end of every MQTT session, so its secrets decrypt them all.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEYLOG_ENV "HIL_BROKER_KEYLOG"
#define LINE_MAX_BYTES 1024 /* an NSS line is at most ~230 characters */

static void append_line(const SSL *ssl, const char *line)
{
    (void)ssl;
    const char *path = getenv(KEYLOG_ENV);
    if (path == NULL || path[0] == '\0' || line == NULL) {
        return;
    }
    size_t len = strnlen(line, LINE_MAX_BYTES);
    if (len == 0 || len >= LINE_MAX_BYTES) {
        return; /* nothing, or not a key-log line */
    }
    char buf[LINE_MAX_BYTES + 1];
    memcpy(buf, line, len);
    buf[len] = '\n';
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        return; /* the rig took the directory away: the broker goes on */
    }
    ssize_t written;
    do {
        written = write(fd, buf, len + 1);
    } while (written < 0 && errno == EINTR);
    (void)close(fd);
}

static void *next_symbol(const char *name)
{
    return dlsym(RTLD_NEXT, name);
}

SSL_CTX *SSL_CTX_new(const SSL_METHOD *method)
{
    SSL_CTX *(*real)(const SSL_METHOD *) = (SSL_CTX * (*)(const SSL_METHOD *))
        next_symbol("SSL_CTX_new");
    SSL_CTX *ctx = real != NULL ? real(method) : NULL;
    if (ctx != NULL) {
        SSL_CTX_set_keylog_callback(ctx, append_line);
    }
    return ctx;
}

#if OPENSSL_VERSION_NUMBER >= 0x30000000L /* SSL_CTX_new_ex is OpenSSL 3's */
SSL_CTX *SSL_CTX_new_ex(OSSL_LIB_CTX *libctx, const char *propq, const SSL_METHOD *method)
{
    SSL_CTX *(*real)(OSSL_LIB_CTX *, const char *, const SSL_METHOD *) =
        (SSL_CTX * (*)(OSSL_LIB_CTX *, const char *, const SSL_METHOD *))
            next_symbol("SSL_CTX_new_ex");
    SSL_CTX *ctx = real != NULL ? real(libctx, propq, method) : NULL;
    if (ctx != NULL) {
        SSL_CTX_set_keylog_callback(ctx, append_line);
    }
    return ctx;
}
#endif

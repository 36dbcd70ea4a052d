/* Signing key files: one line "<iss> <kid> <base64url seed>\n", mode 0600.
 *
 * Saving writes a temporary file next to the target and renames it into place, so a reader
 * sees either the old key or the new one. Loading refuses files that are not regular or that
 * grant any permission to group or others. */
#include "spk/error.h"
#include "spk/token.h"
#include "spk/util.h"
#include "token_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SPK_KEYFILE_MAX 512

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return SPK_EIO;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Best effort: makes the rename durable. Some file systems refuse fsync on directories. */
static void fsync_parent(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        snprintf(dir, sizeof(dir), ".");
    } else if (slash == path) {
        snprintf(dir, sizeof(dir), "/");
    } else {
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    }
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

static int write_temp(const char *tmp_template, char *tmp, size_t tmp_cap, const char *line,
                      size_t n)
{
    snprintf(tmp, tmp_cap, "%s", tmp_template);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        return SPK_EIO;
    }
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    int rc = 0;
    if (fchmod(fd, S_IRUSR | S_IWUSR) != 0 || write_all(fd, line, n) != 0 || fsync(fd) != 0) {
        rc = SPK_EIO;
    }
    if (close(fd) != 0) {
        rc = SPK_EIO;
    }
    if (rc != 0) {
        unlink(tmp);
    }
    return rc;
}

int spk_signer_save(const spk_signer_t *s, const char *path)
{
    if (s == NULL || path == NULL || path[0] == '\0' || !spk_token_name_ok(s->iss) ||
        !spk_token_name_ok(s->kid)) {
        return SPK_EINVAL;
    }
    char templ[PATH_MAX];
    char tmp[PATH_MAX];
    int tl = snprintf(templ, sizeof(templ), "%s.XXXXXX", path);
    if (tl < 0 || (size_t)tl >= sizeof(templ)) {
        return SPK_ERANGE;
    }
    char seed[48];
    char line[SPK_KEYFILE_MAX];
    spk_b64url_encode(seed, s->seed, sizeof(s->seed));
    int n = snprintf(line, sizeof(line), "%s %s %s\n", s->iss, s->kid, seed);
    spk_wipe(seed, sizeof(seed));
    int rc = (n > 0 && (size_t)n < sizeof(line)) ? 0 : SPK_EINVAL;
    if (rc == 0) {
        rc = write_temp(templ, tmp, sizeof(tmp), line, (size_t)n);
    }
    spk_wipe(line, sizeof(line));
    if (rc == 0 && rename(tmp, path) != 0) {
        unlink(tmp);
        rc = SPK_EIO;
    }
    if (rc == 0) {
        fsync_parent(path);
    }
    return rc;
}

/* Reads a whole small regular file with no group/other permissions into buf (NUL terminated). */
static int read_key_file(const char *path, char *buf, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? SPK_ENOTFOUND : SPK_EIO;
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        rc = SPK_EIO;
    } else if (!S_ISREG(st.st_mode) || (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        rc = SPK_ECONFIG;
    }
    size_t n = 0;
    while (rc == 0 && n < cap) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            rc = SPK_EIO;
        } else if (r == 0) {
            break;
        } else {
            n += (size_t)r;
        }
    }
    close(fd);
    if (rc == 0 && n == cap) {
        rc = SPK_ECONFIG; /* too long for a key file */
    }
    if (rc == 0) {
        buf[n] = '\0';
        *len = n;
    }
    return rc;
}

static int parse_key_line(spk_signer_t *s, char *line, size_t n)
{
    char *f[3];
    uint8_t seed[32];
    if (strlen(line) != n || spk_token_split3(line, f) != 0 || !spk_token_name_ok(f[0]) ||
        !spk_token_name_ok(f[1]) ||
        spk_b64url_decode(seed, sizeof(seed), f[2], strlen(f[2])) != 32) {
        spk_wipe(seed, sizeof(seed));
        return SPK_ECONFIG;
    }
    spk_signer_t t;
    int rc = spk_signer_from_seed(&t, seed, f[0]);
    spk_wipe(seed, sizeof(seed));
    if (rc == 0) {
        /* The file's kid is kept: it may be one assigned by an identity provider. */
        memset(t.kid, 0, sizeof(t.kid));
        memcpy(t.kid, f[1], strlen(f[1]) + 1);
        memcpy(s, &t, sizeof(t));
    }
    spk_wipe(&t, sizeof(t));
    return rc;
}

int spk_signer_load(spk_signer_t *s, const char *path)
{
    if (s == NULL || path == NULL) {
        return SPK_EINVAL;
    }
    char buf[SPK_KEYFILE_MAX];
    size_t n = 0;
    int rc = read_key_file(path, buf, sizeof(buf) - 1, &n);
    if (rc == 0) {
        rc = parse_key_line(s, buf, n);
    }
    spk_wipe(buf, sizeof(buf));
    return rc;
}

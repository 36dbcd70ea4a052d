/* One webhook attempt on a worker thread: resolve, connect, TLS for https (the peer verified
 * against the system's or the configured CA and the host name), POST, read the status line.
 * Every step is bounded by one deadline; nothing here touches the store or the loop. */
#include "spk/webhook.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "spk/error.h"
#include "spk/url.h"
#include "spk/util.h"

static bool is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    }
    return false;
}

static int left_ms(int64_t deadline)
{
    int64_t l = deadline - spk_now_ms();
    return l > 0 ? (int)l : 0;
}

static int wait_fd(int fd, short ev, int64_t deadline)
{
    struct pollfd p = {.fd = fd, .events = ev};
    int n;
    do {
        n = poll(&p, 1, left_ms(deadline));
    } while (n < 0 && errno == EINTR);
    return n > 0 ? 0 : SPK_ETIMEOUT;
}

static int connect_to(const spk_url_t *u, int64_t deadline, int *out, char *why, size_t wl)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int gai = getaddrinfo(u->host, u->port, &hints, &res);
    if (gai != 0) {
        snprintf(why, wl, "cannot resolve %s: %s", u->host, gai_strerror(gai));
        return SPK_EIO;
    }
    int rc = SPK_EIO;
    snprintf(why, wl, "cannot connect to %s", u->host);
    for (struct addrinfo *a = res; a != NULL && rc != 0; a = a->ai_next) {
        if (!u->tls && !is_loopback(a->ai_addr)) {
            snprintf(why, wl, "plain http only to a loopback address");
            rc = SPK_EFORBIDDEN;
            continue;
        }
        int fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            continue;
        }
        int c = connect(fd, a->ai_addr, a->ai_addrlen);
        int err = 0;
        socklen_t el = sizeof(err);
        if (c != 0 && errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline) == 0) {
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
            c = err == 0 ? 0 : -1;
        } else if (c != 0 && errno == EINPROGRESS) {
            snprintf(why, wl, "connect to %s timed out", u->host);
            close(fd);
            rc = SPK_ETIMEOUT;
            continue;
        }
        if (c == 0) {
            *out = fd;
            rc = 0;
        } else {
            close(fd);
        }
    }
    freeaddrinfo(res);
    return rc;
}

/* Writes all of buf (plain or TLS) before the deadline. */
static int write_all(int fd, SSL *ssl, const char *buf, size_t len, int64_t deadline)
{
    while (len > 0) {
        int n = ssl != NULL ? SSL_write(ssl, buf, (int)len) : (int)send(fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        short ev = POLLOUT;
        if (ssl != NULL) {
            int e = SSL_get_error(ssl, n);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                return SPK_EIO;
            }
            ev = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
        } else if (errno != EAGAIN && errno != EINTR) {
            return SPK_EIO;
        }
        if (wait_fd(fd, ev, deadline) != 0) {
            return SPK_ETIMEOUT;
        }
    }
    return 0;
}

/* Reads until the status line is complete; returns the status code. */
static int read_status(int fd, SSL *ssl, int64_t deadline)
{
    char buf[SPK_WEBHOOK_STATUS_MAX];
    size_t got = 0;
    int code = 0;
    while (code == 0) {
        int n = ssl != NULL ? SSL_read(ssl, buf + got, (int)(sizeof(buf) - got))
                            : (int)recv(fd, buf + got, sizeof(buf) - got, 0);
        if (n > 0) {
            got += (size_t)n;
            code = spk_webhook_status(buf, got);
            continue;
        }
        if (n == 0) {
            return SPK_EDECODE; /* closed before a whole status line */
        }
        short ev = POLLIN;
        if (ssl != NULL) {
            int e = SSL_get_error(ssl, n);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                return SPK_EDECODE;
            }
            ev = e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;
        } else if (errno != EAGAIN && errno != EINTR) {
            return SPK_EDECODE;
        }
        if (wait_fd(fd, ev, deadline) != 0) {
            return SPK_ETIMEOUT;
        }
    }
    return code;
}

static SSL *tls_start(int fd, const spk_url_t *u, const char *ca_file, int64_t deadline,
                      SSL_CTX **ctx, char *why, size_t wl)
{
    *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = NULL;
    if (*ctx == NULL || SSL_CTX_set_min_proto_version(*ctx, TLS1_2_VERSION) != 1) {
        return NULL;
    }
    SSL_CTX_set_verify(*ctx, SSL_VERIFY_PEER, NULL);
    int ok = ca_file != NULL && ca_file[0] != '\0'
                 ? SSL_CTX_load_verify_locations(*ctx, ca_file, NULL)
                 : SSL_CTX_set_default_verify_paths(*ctx);
    ssl = ok == 1 ? SSL_new(*ctx) : NULL;
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 || SSL_set1_host(ssl, u->host) != 1 ||
        SSL_set_tlsext_host_name(ssl, u->host) != 1) {
        snprintf(why, wl, "TLS set-up failed");
        SSL_free(ssl);
        return NULL;
    }
    for (;;) {
        int n = SSL_connect(ssl);
        if (n == 1) {
            return ssl;
        }
        int e = SSL_get_error(ssl, n);
        if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) ||
            wait_fd(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline) != 0) {
            long v = SSL_get_verify_result(ssl);
            snprintf(why, wl, "TLS handshake with %s failed%s%s", u->host,
                     v != X509_V_OK ? ": " : "",
                     v != X509_V_OK ? X509_verify_cert_error_string(v) : "");
            SSL_free(ssl);
            ERR_clear_error();
            return NULL;
        }
    }
}

int spk_webhook_post(const char *url, const char *headers, const char *body, int timeout_ms,
                     const char *ca_file, char *why, size_t why_len)
{
    spk_url_t u;
    if (spk_url_parse(url, strlen(url), &u) != 0) {
        snprintf(why, why_len, "malformed webhook URL");
        return SPK_EINVAL;
    }
    int64_t deadline = spk_now_ms() + timeout_ms;
    int fd = -1;
    int rc = connect_to(&u, deadline, &fd, why, why_len);
    if (rc != 0) {
        return rc;
    }
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    if (u.tls) {
        ssl = tls_start(fd, &u, ca_file, deadline, &ctx, why, why_len);
        if (ssl == NULL) {
            SSL_CTX_free(ctx);
            close(fd);
            return SPK_EVERIFY;
        }
    }
    size_t blen = strlen(body);
    size_t cap = strlen(headers) + strlen(u.path) + strlen(u.host) + 256;
    char *head = malloc(cap);
    if (head == NULL) {
        rc = SPK_ENOMEM;
    } else {
        /* Host: the authority as written (an IPv6 address in brackets, a port other than the
         * scheme's default). */
        bool v6 = strchr(u.host, ':') != NULL;
        bool dflt = strcmp(u.port, u.tls ? "443" : "80") == 0;
        snprintf(head, cap,
                 "POST %s HTTP/1.1\r\nHost: %s%s%s%s%s\r\nUser-Agent: spreekd\r\nContent-Type: "
                 "application/json\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n",
                 u.path, v6 ? "[" : "", u.host, v6 ? "]" : "", dflt ? "" : ":", dflt ? "" : u.port,
                 blen, headers);
        rc = write_all(fd, ssl, head, strlen(head), deadline);
        free(head);
    }
    if (rc == 0) {
        rc = write_all(fd, ssl, body, blen, deadline);
    }
    if (rc == 0) {
        rc = read_status(fd, ssl, deadline);
    }
    if (rc == SPK_ETIMEOUT) {
        snprintf(why, why_len, "no answer within %d ms", timeout_ms);
    } else if (rc < 0 && why[0] == '\0') {
        snprintf(why, why_len, "%s", spk_strerror(rc));
    }
    if (ssl != NULL) {
        SSL_free(ssl);
    }
    SSL_CTX_free(ctx);
    close(fd);
    return rc;
}

/* Transport, HTTP side: /files/<id>, the bytes of encrypted chat attachments (docs/protocol.md
 * §5.10). The core decides (spk_sig_file_begin with the request's ticket); this file moves the
 * bytes. An upload goes to "<id>.part", is made durable in the thread pool (fdatasync, rename,
 * directory fsync) and only then answered 201; a download streams the file. Answers are JSON
 * {"code", "message"} with the codes of the WebSocket protocol. */
#include "ws_server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spk/error.h"
#include "spk/log.h"

struct ws_file_job {
    uv_work_t req;
    spk_ws_server_t *srv;
    struct lws *wsi;  /* NULL once the request's connection is gone */
    spk_ws_http_t *h; /* idem */
    int fd;
    char part[700], final[700];
    int err; /* errno of the first failed step */
};

int ws_files_init(spk_ws_server_t *srv, char *why, size_t why_len)
{
    /* files_dir, when set, is shared by the nodes of a store (a network file system): an
     * attachment uploaded to one node is downloaded from any (docs/operations.md) */
    int n = srv->cfg->files_dir[0]
                ? snprintf(srv->files_dir, sizeof(srv->files_dir), "%s", srv->cfg->files_dir)
                : snprintf(srv->files_dir, sizeof(srv->files_dir), "%s/files", srv->cfg->data_dir);
    if (n < 0 || (size_t)n >= sizeof(srv->files_dir)) {
        snprintf(why, why_len, "attachment directory path too long");
        return SPK_ECONFIG;
    }
    if (mkdir(srv->cfg->data_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(why, why_len, "cannot create %s: %s", srv->cfg->data_dir, strerror(errno));
        return SPK_EIO;
    }
    if (mkdir(srv->files_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(why, why_len, "cannot create %s: %s", srv->files_dir, strerror(errno));
        return SPK_EIO;
    }
    return 0;
}

/* A file id as the core makes them: "f_" and base64url, nothing that could leave the directory. */
static bool id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n < 3 || n >= sizeof(((spk_sig_file_t *)0)->file) || strncmp(id, "f_", 2) != 0) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = id[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_')) {
            return false;
        }
    }
    return true;
}

static void file_path(spk_ws_server_t *srv, const char *id, const char *suffix, char *out,
                      size_t cap)
{
    snprintf(out, cap, "%s/%s%s", srv->files_dir, id, suffix);
}

static unsigned int http_status(int rc)
{
    switch (rc) {
    case SPK_EUNAUTH:
        return 401;
    case SPK_EFORBIDDEN:
        return 403;
    case SPK_ENOTFOUND:
        return 404;
    case SPK_ESTATE:
        return 409;
    case SPK_ETOOBIG:
        return 413;
    case SPK_ESHUTDOWN:
        return 503;
    case SPK_EBADMSG:
    case SPK_EINVAL:
        return 400;
    default:
        return 500;
    }
}

/* Answers {"code", "message"} with the status of rc (or `status` when not 0); close_after when
 * the request's body is not read. */
static int refuse_as(spk_ws_server_t *srv, struct lws *wsi, spk_ws_http_t *h, unsigned int status,
                     int rc, const char *message, bool close_after)
{
    char body[320];
    snprintf(body, sizeof(body), "{\"code\":\"%s\",\"message\":\"%s\"}", spk_err_wire(rc),
             message != NULL ? message : spk_strerror(rc));
    h->close_after = close_after;
    return ws_http_respond_text(srv, wsi, h, status != 0 ? status : http_status(rc),
                                "application/json", body);
}

static int refuse(spk_ws_server_t *srv, struct lws *wsi, spk_ws_http_t *h, int rc,
                  const char *message, bool close_after)
{
    return refuse_as(srv, wsi, h, 0, rc, message, close_after);
}

static const char *ticket_of(struct lws *wsi, char *buf, size_t cap)
{
    if (lws_hdr_copy(wsi, buf, (int)cap, WSI_TOKEN_HTTP_AUTHORIZATION) <= 0 ||
        strncasecmp(buf, "Bearer ", 7) != 0) {
        return NULL;
    }
    return buf + 7;
}

static int download(spk_ws_server_t *srv, struct lws *wsi, spk_ws_http_t *h,
                    const spk_sig_file_t *f)
{
    char path[700];
    file_path(srv, f->file, "", path, sizeof(path));
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        return refuse(srv, wsi, h, SPK_ENOTFOUND, "the file has not been uploaded or is gone",
                      false);
    }
    unsigned char hdrs[1024];
    unsigned char *p = hdrs, *end = hdrs + sizeof(hdrs) - 1;
    if (ws_http_security_headers(srv, wsi, false, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end)) {
        return -1;
    }
    *p = '\0';
    int n = lws_serve_http_file(wsi, path, "application/octet-stream", (const char *)hdrs,
                                (int)(p - hdrs));
    if (n > 0) {
        ws_limits_response_done(srv, wsi);
    }
    if (n < 0 || (n > 0 && lws_http_transaction_completed(wsi))) {
        return -1;
    }
    return 0;
}

static int upload_start(spk_ws_server_t *srv, struct lws *wsi, spk_ws_http_t *h,
                        const spk_sig_file_t *f)
{
    char len_txt[32] = "";
    if (lws_hdr_copy(wsi, len_txt, sizeof(len_txt), WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0) {
        return refuse_as(srv, wsi, h, 411, SPK_EBADMSG, "Content-Length is required", true);
    }
    char *endp = NULL;
    errno = 0;
    unsigned long long declared = strtoull(len_txt, &endp, 10);
    if (errno != 0 || endp == len_txt || *endp != '\0' || declared != (unsigned long long)f->size) {
        return refuse(srv, wsi, h, SPK_EBADMSG,
                      "Content-Length differs from the size the upload was granted for", true);
    }
    char part[700];
    file_path(srv, f->file, ".part", part, sizeof(part));
    int fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        spk_error(0, "files: cannot create %s: %s", part, strerror(errno));
        return refuse(srv, wsi, h, SPK_EIO, NULL, true);
    }
    h->uploading = true;
    h->fd = fd;
    h->got = 0;
    h->upload_err = 0;
    h->xfer = *f;
    return 0;
}

int ws_files_request(spk_ws_server_t *srv, struct lws *wsi, spk_ws_http_t *h, const char *uri)
{
    bool get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
    bool put = lws_hdr_total_length(wsi, WSI_TOKEN_PUT_URI) > 0;
    if (!get && !put) {
        return refuse_as(srv, wsi, h, 405, SPK_EBADMSG, "use GET or PUT", true);
    }
    const char *id = uri + 7; /* after "/files/" */
    if (!id_ok(id)) {
        return refuse(srv, wsi, h, SPK_ENOTFOUND, "no such file", put);
    }
    if (srv->draining || !srv->sig) {
        return refuse(srv, wsi, h, SPK_ESHUTDOWN, NULL, put);
    }
    char auth[128];
    const char *ticket = ticket_of(wsi, auth, sizeof(auth));
    spk_sig_file_t f;
    int rc =
        spk_sig_file_begin(srv->sig, put ? SPK_SIG_FILE_PUT : SPK_SIG_FILE_GET, id, ticket, &f);
    memset(auth, 0, sizeof(auth));
    if (rc != 0) {
        const char *msg = rc == SPK_EUNAUTH ? "the ticket is unknown, used or expired, or its "
                                              "session ended; ask for a new one"
                                            : "the access to this conversation has ended";
        return refuse(srv, wsi, h, rc, msg, put);
    }
    return put ? upload_start(srv, wsi, h, &f) : download(srv, wsi, h, &f);
}

int ws_files_body(spk_ws_server_t *srv, spk_ws_http_t *h, const void *in, size_t len)
{
    (void)srv;
    if (h->upload_err != 0) {
        return 0;
    }
    if (h->got + len > (uint64_t)h->xfer.size) {
        h->upload_err = SPK_ETOOBIG;
        return 0;
    }
    const char *p = in;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(h->fd, p, left);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            spk_error(0, "files: write %s: %s", h->xfer.file, strerror(errno));
            h->upload_err = SPK_EIO;
            return 0;
        }
        p += n;
        left -= (size_t)n;
    }
    h->got += len;
    return 0;
}

/* Thread pool: the bytes and then the name reach the disk. */
static void durable_work(uv_work_t *req)
{
    ws_file_job_t *j = req->data;
    if (fdatasync(j->fd) != 0 || rename(j->part, j->final) != 0) {
        j->err = errno;
        return;
    }
    char dir[700];
    snprintf(dir, sizeof(dir), "%s", j->final);
    char *slash = strrchr(dir, '/');
    if (slash != NULL) {
        *slash = '\0';
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        j->err = errno;
    }
    if (dfd >= 0) {
        close(dfd);
    }
}

static void durable_done(uv_work_t *req, int status)
{
    ws_file_job_t *j = req->data;
    close(j->fd);
    if (status != 0 && j->err == 0) {
        j->err = ECANCELED;
    }
    if (j->err != 0) {
        spk_error(0, "files: storing %s failed: %s", j->final, strerror(j->err));
        unlink(j->part);
        unlink(j->final);
    }
    if (j->h != NULL) {
        spk_ws_http_t *h = j->h;
        h->job = NULL;
        if (j->err != 0) {
            refuse(j->srv, j->wsi, h, SPK_EIO, NULL, false);
        } else {
            char body[160];
            snprintf(body, sizeof(body), "{\"file\":\"%s\",\"size\":%lld}", h->xfer.file,
                     (long long)h->xfer.size);
            ws_http_respond_text(j->srv, j->wsi, h, 201, "application/json", body);
        }
    }
    free(j);
}

int ws_files_body_done(spk_ws_server_t *srv, struct lws *wsi, spk_ws_http_t *h)
{
    h->uploading = false;
    int rc = h->upload_err;
    const char *msg = NULL;
    if (rc == 0 && h->got != (uint64_t)h->xfer.size) {
        rc = SPK_EBADMSG;
        msg = "the body is shorter than the size the upload was granted for";
    } else if (rc == SPK_ETOOBIG) {
        msg = "the body is longer than the size the upload was granted for";
    }
    if (rc == 0) {
        rc = spk_sig_file_recheck(srv->sig, &h->xfer); /* the access may have ended meanwhile */
        msg = rc != 0 ? "the access to this conversation has ended" : NULL;
    }
    ws_file_job_t *j = rc == 0 ? calloc(1, sizeof(*j)) : NULL;
    if (rc == 0 && j == NULL) {
        rc = SPK_ENOMEM;
    }
    if (rc != 0) {
        char part[700];
        file_path(srv, h->xfer.file, ".part", part, sizeof(part));
        close(h->fd);
        unlink(part);
        return refuse(srv, wsi, h, rc, msg, false);
    }
    j->srv = srv;
    j->wsi = wsi;
    j->h = h;
    j->fd = h->fd;
    file_path(srv, h->xfer.file, ".part", j->part, sizeof(j->part));
    file_path(srv, h->xfer.file, "", j->final, sizeof(j->final));
    j->req.data = j;
    h->job = j;
    int urc = uv_queue_work(srv->loop, &j->req, durable_work, durable_done);
    if (urc != 0) {
        h->job = NULL;
        close(j->fd);
        unlink(j->part);
        free(j);
        return refuse(srv, wsi, h, SPK_EIO, NULL, false);
    }
    return 0;
}

void ws_files_closed(spk_ws_server_t *srv, spk_ws_http_t *h)
{
    if (h->job != NULL) {
        /* being made durable: it finishes (the file is complete) but nobody hears of it */
        h->job->h = NULL;
        h->job->wsi = NULL;
        h->job = NULL;
    }
    if (h->uploading) {
        h->uploading = false;
        char part[700];
        file_path(srv, h->xfer.file, ".part", part, sizeof(part));
        close(h->fd);
        unlink(part);
    }
}

void ws_files_delete(void *ud, const char *file)
{
    spk_ws_server_t *srv = ud;
    if (!id_ok(file)) {
        return;
    }
    char path[700];
    file_path(srv, file, "", path, sizeof(path));
    if (unlink(path) != 0 && errno != ENOENT) {
        spk_warn(0, "files: cannot delete %s: %s", path, strerror(errno));
    }
    file_path(srv, file, ".part", path, sizeof(path));
    unlink(path);
}

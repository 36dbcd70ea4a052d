/* Signaling core: the consult workflow as an I/O-free state machine.
 *
 * The transport (ws_server.c: libwebsockets on libuv) owns sockets and calls in with
 * connection events and complete text messages; the core answers through the io callbacks.
 * docs/protocol.md specifies the messages; docs/roles.md the role x action matrix it enforces.
 * Single-threaded: every function runs on the control thread. */
#ifndef SPK_SIGNALING_H
#define SPK_SIGNALING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spk/config.h"
#include "spk/store.h"
#include "spk/token.h"

typedef struct spk_sig spk_sig_t;

typedef struct {
    void *ud;
    /* Queues one text message for `conn` (copied). Returns 0, or SPK_EBACKPRESSURE when the
     * connection's send queue is over its cap: the transport then closes the connection. */
    int (*send_cb)(void *ud, uint64_t conn, const char *msg, size_t len);
    /* Asks the transport to close `conn` with a WebSocket close code and reason. The core
     * forgets the connection when the transport later calls spk_sig_conn_close. */
    void (*close_cb)(void *ud, uint64_t conn, int ws_code, const char *reason);
    /* Optional: bytes queued in the transport for `conn` and not yet written. Messages the core
     * held back (see spk_sig_durable) are released while this is under half of
     * send_queue_bytes, so that a burst of them does not overflow a client that reads; the
     * transport calls spk_sig_conn_writable when its queue has emptied. */
    size_t (*queued_cb)(void *ud, uint64_t conn);
    /* Optional: deletes the stored bytes of chat attachment `file` (its retention ran out). */
    void (*file_delete_cb)(void *ud, const char *file);
    /* Optional, for several nodes on one store (docs/architecture.md "Several nodes"): publishes
     * one event (JSON text) to the other nodes, which hand it to spk_sig_bus_input. NULL: one
     * node, nothing is published. Called with bus_ud, once the commit it reveals is durable. */
    void (*publish_cb)(void *bus_ud, const char *msg, size_t len);
    void *bus_ud;
} spk_sig_io_t;

/* WebSocket close codes used by the core (docs/protocol.md). */
#define SPK_WS_AUTH_TIMEOUT 4001
#define SPK_WS_IDLE_TIMEOUT 4002
#define SPK_WS_SLOW_CONSUMER 4003
#define SPK_WS_TOKEN_EXPIRED 4004
#define SPK_WS_SHUTDOWN 1001
#define SPK_WS_TRY_LATER 1013

/* Creates the core. store, keyring and issuer are borrowed and must outlive it. Loads open
 * consults, lobbies and participants from the store. */
int spk_sig_new(spk_sig_t **out, const spk_config_t *cfg, spk_store_t *store,
                const spk_keyring_t *kr, const spk_signer_t *issuer, const spk_sig_io_t *io);
void spk_sig_free(spk_sig_t *s);

/* A WebSocket connection was established; the core sends "hello". */
int spk_sig_conn_open(spk_sig_t *s, uint64_t conn, const char *remote_addr, uint64_t now_ms);
/* The connection carries requests of the HTTP API (/api/v1, docs/integration.md), which is for
 * practice systems: "auth" on it accepts only a service token, any other valid token is
 * refused with SPK_EFORBIDDEN (audited). SPK_ENOTFOUND for an unknown connection. */
int spk_sig_conn_api(spk_sig_t *s, uint64_t conn);
/* The connection is gone (any reason); presence and rosters are updated. */
void spk_sig_conn_close(spk_sig_t *s, uint64_t conn);
/* One complete text message. */
void spk_sig_conn_message(spk_sig_t *s, uint64_t conn, const char *data, size_t len,
                          uint64_t now_ms);
/* Has the current loop turn handled chat.send for longer than chat_turn_budget_ms? Then the
 * transport leaves further messages for the next turns (spk_sig_flush ends a turn). */
bool spk_sig_busy(spk_sig_t *s);
/* The largest message the transport accepts from conn: max_message_bytes, or for a signed-in
 * connection the larger mls_message_bytes (only mls.* requests may use the difference: a Commit
 * into a large group carries the ratchet tree in its Welcome). */
size_t spk_sig_conn_rx_limit(spk_sig_t *s, uint64_t conn);
/* The transport's send queue for conn has emptied: held messages may go on. */
void spk_sig_conn_writable(spk_sig_t *s, uint64_t conn);
/* An error the transport detected (SPK_ETOOBIG, SPK_EBADMSG for a binary frame): the core
 * answers with the documented error message. */
void spk_sig_conn_reject(spk_sig_t *s, uint64_t conn, int err);
/* Periodic housekeeping: authentication deadline, token expiry, delegations that ran out,
 * summaries of refused sign-ins. Call about once a second. */
void spk_sig_tick(spk_sig_t *s, uint64_t now_ms);
/* The store has flushed more commits (spk_store_sync_opts_t.durable_cb, then on the control
 * thread): answers and events held for them go out. failed: the store can no longer flush;
 * nothing more is acknowledged (the caller should stop the server). */
void spk_sig_durable(spk_sig_t *s, bool failed);
/* An event another node published (spk_sig_io_t.publish_cb): this node's view of the consult or
 * conversation is read again from the store and its own connections are told, as if the change
 * had happened here. Its own events and malformed input are ignored. */
void spk_sig_bus_input(spk_sig_t *s, const char *msg, size_t len);
/* Group commit of application messages: with it on, chat.send is written together with the
 * other messages that arrive before spk_sig_flush (or before anything else enters the core: any
 * other request, a connection opening or closing, the tick, shutdown), in one transaction; the
 * answers and deliveries then go out, held until durable as always. Off by default (every
 * chat.send its own transaction). The transport calls spk_sig_flush once it has handled what it
 * read in a turn of its event loop. */
void spk_sig_batch_chat(spk_sig_t *s, bool on);
void spk_sig_flush(spk_sig_t *s);
/* Starts draining: every connection is told "server.shutdown"; new messages get
 * SPK_ESHUTDOWN. */
void spk_sig_shutdown(spk_sig_t *s);
/* Encrypted chat attachments (docs/protocol.md §5.10). The transport moves the bytes; the core
 * decides. A ticket from chat.file.upload / chat.file.download allows one HTTP request for one
 * file within a minute; it is bound to the connection that asked for it. */
#define SPK_FILE_TICKET_LEN 48 /* 43 base64url characters and a NUL */
typedef enum { SPK_SIG_FILE_PUT = 1, SPK_SIG_FILE_GET = 2 } spk_sig_file_op_t;
typedef struct {
    spk_sig_file_op_t op;
    char file[48];         /* the file id: [A-Za-z0-9_-], safe as a file name */
    char conversation[48]; /* its conversation */
    int64_t size;          /* exact number of bytes (PUT: what must arrive) */
    uint64_t conn;         /* the connection the ticket was handed to */
} spk_sig_file_t;
/* At the start of a request: uses up the ticket for `file` and decides again whether the
 * connection that asked may move it. 0 and *out; SPK_EUNAUTH (unknown, used, expired ticket or
 * the session is gone), SPK_EFORBIDDEN / SPK_ESTATE (the access ended; audited). */
int spk_sig_file_begin(spk_sig_t *s, spk_sig_file_op_t op, const char *file, const char *ticket,
                       spk_sig_file_t *out);
/* At the end of an upload, before its bytes become visible: the same decision again. */
int spk_sig_file_recheck(spk_sig_t *s, const spk_sig_file_t *f);

/* Appends Prometheus text-format metrics of the core to buf; returns bytes written. */
size_t spk_sig_metrics(spk_sig_t *s, char *buf, size_t cap);

#endif

/* spreekload --chat internals: conversations of C devices (chat_dev.h) set up through the real
 * protocol (load_chat.c), the measured steps of application messages and their verification
 * (load_chat_run.c), and Commit handling at group sizes (load_chat_commit.c). One thread, one
 * uv loop. docs/performance.md ("Chat") describes the method. */
#ifndef SPK_LOAD_CHAT_INT_H
#define SPK_LOAD_CHAT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "benchutil.h"
#include "chat_dev.h"
#include "load_chat.h"

#define LC_MAX_DEVS 8
#define LC_MAX_STEPS 16

typedef struct lc lc_t;
typedef struct lc_conv lc_conv_t;

/* One message sent in a measured step. */
typedef struct {
    struct lc_dev *dev;
    uint64_t t_send;
} lc_send_t;

/* What happened to one seq of a conversation's log (application messages). */
typedef struct {
    uint64_t t_send, t_last; /* send time (sender), last receipt (recipients) */
    int16_t n_recv;          /* recipients that received it */
    int8_t sender;           /* device index; -1 unknown */
    int8_t step;             /* measured step; -1 none */
    bool acked;              /* the sender got "ok" */
} lc_slot_t;

/* A stored ciphertext to verify after the step (sample conversations). */
typedef struct {
    int64_t seq;
    uint8_t *p;
    size_t n;
} lc_rx_t;

typedef struct lc_dev {
    lc_conv_t *cv;
    int idx;
    cdev_t *d;
    char sub[64];
    char role[16];
    char device[16];
    bool second_patient; /* signs in with the patient's session token */
    bool started, ready, synced, joined;
    /* the step's messages, encrypted before it starts */
    char **q;
    size_t qn, qi;
    uint32_t next_msgno;
    lc_rx_t *rx; /* sample conversations: received ciphertexts */
    size_t n_rx, cap_rx;
    uint8_t *got; /* seqs handed to the application (bitmap) */
    size_t cap_got;
    uint8_t *msgs; /* (sender, msgno) handed to the application: bitmap per sender */
    size_t msgs_per_sender;
    uint64_t app_dups; /* the same message twice to the application */
    uint64_t bad_text; /* a plaintext that is not what was sent */
} lc_dev_t;

typedef enum {
    OP_CONSULT_CREATE,
    OP_INVITE,
    OP_JOIN,
    OP_CHAT_CREATE,
    OP_ADD_MEMBER, /* arg: device */
    OP_START,      /* arg: device */
    OP_WAIT_READY, /* arg: device */
    OP_ADMIT,      /* arg: device */
    OP_GROUP,
    OP_WAIT_SYNCED,
    OP_CLAIM, /* arg: device (its user) */
    OP_COMMIT,
    OP_WAIT_JOINED,
    OP_DONE,
} lc_op_t;

struct lc_conv {
    lc_t *L;
    int idx;
    const char *kind;
    char id[CDEV_ID_LEN];
    char consult[CDEV_ID_LEN];
    char invite[CDEV_ID_LEN];
    char practice[32];
    lc_dev_t devs[LC_MAX_DEVS];
    int n;
    struct {
        lc_op_t op;
        int arg;
    } plan[32];
    int n_plan, pc;
    bool busy, ready, failed;
    bool sample; /* recipients keep the ciphertexts; decrypted after the step */
    uint8_t **kps;
    size_t *kp_len;
    size_t n_kps;
    lc_slot_t *slots; /* by seq */
    size_t cap_slots;
};

typedef struct {
    double rate;
    double wall_s;
    uint64_t t0, t1;
    double cpu0, cpu1, self0, self1;
    double ctl0, ctl1;   /* spreekd's control thread */
    double wait0, wait1; /* ... runnable but waiting for a CPU (schedstat) */
    uint64_t sent, acked, delivered;
    uint64_t offline; /* messages whose turn came while their device was offline */
    uint64_t shed; /* answered "unavailable" (the service is behind): not stored, not sent again */
} lc_step_t;

struct lc {
    /* options */
    int conversations, k;
    const char *kind;   /* care_team, consult, mixed */
    const char *prefix; /* of every user subject and patient: runs against one spreekd meet no
                           earlier ones */
    double rates[LC_MAX_STEPS];
    int n_rates;
    double duration_s, setup_timeout_s;
    double drain_timeout_s; /* after a step, wait at most this for every delivery (0: default) */
    size_t size;
    int ack_ms;
    int sample; /* conversations whose messages are decrypted after each step */
    bool decrypt_all;
    int turn_budget_ms;   /* > 0: spreekd's chat_turn_budget_ms (--turn-budget) */
    bool expect_deferred; /* fail unless spreekd left some messages for a later loop turn */
    double crash_after_s; /* 0: no kill */
    int commit_sizes[8];
    int n_commit_sizes;
    int commits;
    int max_connecting;
    bool verbose;
    /* spreekd */
    const char *spreekd;
    char data[300];
    const char *tmpdir; /* parent of the temporary data directory */
    char tmp[256];
    int port, pid;
    /* environment */
    uv_loop_t loop;
    cdev_env_t env;
    spk_signer_t signer;
    uv_timer_t tick;
    uv_timer_t pacer; /* the measured steps' sending */
    /* conversations and devices */
    lc_conv_t *cs;
    lc_dev_t **all;
    size_t n_all;
    size_t n_connecting;
    size_t next_start; /* devices waiting to connect: queue over `all` in start order */
    lc_dev_t **start_q;
    size_t n_start_q, cap_start_q;
    size_t n_ready_convs;
    /* the measured step */
    int step; /* -1 outside */
    bool sending;
    lc_step_t steps[LC_MAX_STEPS];
    lc_send_t *sends;
    size_t n_sends, cap_sends;
    /* earlier steps' arrays with answers still outstanding (send_done writes through them) */
    lc_send_t **retired;
    size_t n_retired;
    size_t rr;
    uint64_t due;
    size_t in_flight;
    /* crash */
    bool crashed, restarted;
    bool closing; /* tearing down: requests in flight are answered "disconnected" */
    uint64_t crash_at_ns;
    /* counters */
    uint64_t setup_errors, send_errors, lost, reconnects, verify_errors;
    uint64_t incomplete; /* acknowledged messages some recipient never got (after the drain) */
    char first_error[256];
};

/* load_chat.c */
void lc_error(lc_t *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int lc_token(lc_t *L, const char *sub, const char *name, const char *role, const char *practice,
             const char *acts_for, char *out, size_t cap);
void lc_dev_start(lc_t *L, lc_dev_t *v);
void lc_advance(lc_conv_t *cv);
/* Runs the loop until cond holds or ms pass (cond NULL: just ms). */
bool lc_run_until(lc_t *L, bool (*cond)(lc_t *), double ms);
int lc_server_start(lc_t *L);
void lc_server_kill(lc_t *L);
void lc_server_stop(lc_t *L);
/* CPU seconds of spreekd's control thread (its main thread), -1 when unknown. */
double lc_control_cpu_s(int pid);

/* load_chat_run.c */
extern const cdev_cbs_t lc_cbs;
int lc_run_steps(lc_t *L, json_t *out);
/* connections_lost and spreekd's header_timeouts into the JSON summary */
void lc_lost_json(lc_t *L, json_t *out);

/* load_chat_commit.c */
int lc_run_commits(lc_t *L, json_t *out);

#endif

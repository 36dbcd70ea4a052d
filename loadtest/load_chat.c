/* spreekload --chat: N conversations of K C chat devices through spreekd's delivery service.
 *
 * Every conversation is set up through the real protocol (docs/protocol.md §5.9) by its devices,
 * each one connection: the GP signs in (tokens signed with the data directory's issuer key),
 * creates the conversation — a care_team conversation of a patient with an assistant and
 * partners, or the chat of a consult, for which the GP creates the consult and an invite that
 * the patient's phone redeems, admits the patient, and the patient's laptop signs in with the
 * session token — adds the others as members, creates the MLS group, claims everyone's
 * KeyPackages and commits their Adds; every device declares itself, uploads KeyPackages,
 * follows its conversations live (chat.sync) and joins from its Welcome. Then the measured
 * steps (load_chat_run.c) or the Commit sizes (load_chat_commit.c). One JSON object on stdout,
 * progress on stderr. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "load_chat_int.h"
#include "spk/role.h"
#include "spk/util.h"

extern char **environ;

void lc_error(lc_t *L, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (L->first_error[0] == '\0') {
        snprintf(L->first_error, sizeof(L->first_error), "%s", buf);
    }
    if (L->verbose || L->setup_errors + L->send_errors + L->verify_errors < 5) {
        fprintf(stderr, "spreekload: %s\n", buf);
    }
}

/* ---- spreekd ---- */

int lc_server_start(lc_t *L)
{
    if (L->data[0] == '\0') {
        snprintf(L->tmp, sizeof(L->tmp), "%s/spreekload-chat.XXXXXX", L->tmpdir);
        if (mkdtemp(L->tmp) == NULL) {
            return -1;
        }
        snprintf(L->data, sizeof(L->data), "%s", L->tmp);
    }
    if (L->port <= 0) {
        L->port = spk_bench_free_port();
    }
    char listen[32], budget[16];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", L->port);
    snprintf(budget, sizeof(budget), "%d", L->turn_budget_ms > 0 ? L->turn_budget_ms : 10);
    /* Limits out of the way of one client address holding thousands of connections and of large
     * Commits; no media relay. */
    char *argv[] = {(char *)L->spreekd, "--listen", listen, "--data", L->data, "--log-level",
                    "warn", "--rate", "1000000", "--burst", "1000000", "--max-connections",
                    "100000", "--max-connections-per-address", "100000",
                    "--max-pending-per-address", "100000", "--idle-timeout", "600",
                    "--auth-timeout", "600",
                    /* a Commit adding to a group of 1,000 carries the ratchet tree in its Welcome:
                     * over the default frame limit of 64 KiB, within mls_message_bytes (4 MiB) */
                    "--chat-turn-budget", budget, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int sr = posix_spawn(&pid, L->spreekd, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (sr != 0) {
        fprintf(stderr, "spreekload: cannot start %s: %s\n", L->spreekd, strerror(sr));
        return -1;
    }
    L->pid = (int)pid;
    for (int i = 0; i < 1000; i++) {
        if (spk_bench_port_accepts(L->port)) {
            return 0;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            L->pid = 0;
            break;
        }
        usleep(10000);
    }
    fprintf(stderr, "spreekload: spreekd did not start\n");
    return -1;
}

void lc_server_kill(lc_t *L)
{
    if (L->pid > 0) {
        kill(L->pid, SIGKILL);
        waitpid(L->pid, NULL, 0);
        L->pid = 0;
    }
}

void lc_server_stop(lc_t *L)
{
    if (L->spreekd == NULL) {
        return;
    }
    if (L->pid > 0) {
        kill(L->pid, SIGTERM);
        for (int i = 0; i < 1000 && L->pid > 0; i++) {
            if (waitpid(L->pid, NULL, WNOHANG) == L->pid) {
                L->pid = 0;
            } else {
                usleep(10000);
            }
        }
        lc_server_kill(L);
    }
    if (L->tmp[0] != '\0') {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", L->tmp);
        if (system(cmd) != 0) {
            fprintf(stderr, "spreekload: cannot remove %s\n", L->tmp);
        }
    }
}

double lc_control_cpu_s(int pid)
{
    /* the main thread runs the control loop: its run time from schedstat (nanoseconds) */
    char path[96];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", pid, pid);
    FILE *f = fopen(path, "r");
    unsigned long long run = 0;
    int n = f != NULL ? fscanf(f, "%llu", &run) : 0;
    if (f != NULL) {
        fclose(f);
    }
    return n == 1 ? (double)run / 1e9 : -1;
}

/* ---- tokens and devices ---- */

int lc_token(lc_t *L, const char *sub, const char *name, const char *role, const char *practice,
             const char *acts_for, char *out, size_t cap)
{
    spk_token_claims_t c;
    memset(&c, 0, sizeof(c));
    time_t now = time(NULL);
    snprintf(c.sub, sizeof(c.sub), "%s", sub);
    snprintf(c.name, sizeof(c.name), "%s", name);
    c.role = spk_role_parse(role);
    snprintf(c.practice, sizeof(c.practice), "%s", practice);
    snprintf(c.acts_for, sizeof(c.acts_for), "%s", acts_for != NULL ? acts_for : "");
    snprintf(c.aud, sizeof(c.aud), "spreekkamer");
    uint8_t r[9];
    RAND_bytes(r, sizeof(r));
    spk_hex_encode(c.jti, r, sizeof(r));
    c.iat = now;
    c.nbf = now - 5;
    c.exp = now + 6 * 3600;
    long n = spk_token_sign(&L->signer, &c, out, cap);
    return n < 0 ? (int)n : 0;
}

/* Creates (first time) and connects the device; connections are opened a few at a time. */
static void start_pump(lc_t *L)
{
    while (L->n_connecting < (size_t)L->max_connecting && L->next_start < L->n_start_q) {
        lc_dev_t *v = L->start_q[L->next_start++];
        lc_conv_t *cv = v->cv;
        if (v->d == NULL) {
            char tok[SPK_TOKEN_MAX_LEN + 1] = "";
            const char *token = tok, *invite = NULL;
            if (strcmp(v->role, "patient") == 0) {
                token = v->second_patient ? cv->devs[1].d->token : NULL;
                invite = v->second_patient ? NULL : cv->invite;
            } else {
                char name[96];
                snprintf(name, sizeof(name), "%s %s", v->role, v->sub);
                const char *acts_for = strcmp(v->role, "assistant") == 0 ? cv->devs[0].sub : NULL;
                const char *practice =
                    strcmp(v->role, "partner") == 0 ? "apotheek-load" : cv->practice;
                if (lc_token(L, v->sub, name, v->role, practice, acts_for, tok, sizeof(tok)) != 0) {
                    lc_error(L, "cannot sign a token");
                    L->setup_errors++;
                    continue;
                }
            }
            v->d = cdev_new(&L->env, token, invite, "Patiënt Load", v->device, 3);
            if (v->d == NULL) {
                L->setup_errors++;
                continue;
            }
            v->d->data = v;
        }
        if (cdev_connect(v->d) == 0) {
            L->n_connecting++;
            v->started = true;
        } else {
            L->lost++;
        }
    }
}

void lc_dev_start(lc_t *L, lc_dev_t *v)
{
    if (L->n_start_q == L->cap_start_q) {
        size_t ncap = L->cap_start_q ? L->cap_start_q * 2 : 256;
        lc_dev_t **n = realloc(L->start_q, ncap * sizeof(*n));
        if (n == NULL) {
            L->setup_errors++;
            return;
        }
        L->start_q = n;
        L->cap_start_q = ncap;
    }
    L->start_q[L->n_start_q++] = v;
    start_pump(L);
}

/* ---- the set-up plan of one conversation (run by its GP's first device) ---- */

static void op_done(cdev_t *d, void *ud, const char *code, json_t *m)
{
    lc_conv_t *cv = ud;
    lc_t *L = cv->L;
    lc_op_t op = cv->plan[cv->pc].op;
    cv->busy = false;
    if (code != NULL) {
        L->setup_errors++;
        cv->failed = true;
        lc_error(L, "conversation %d: set-up step %d (op %d): %s %s", cv->idx, cv->pc, (int)op,
                 code, cdev_str(m, "message"));
        return;
    }
    (void)d;
    if (op == OP_CONSULT_CREATE) {
        snprintf(cv->consult, sizeof(cv->consult), "%s",
                 cdev_str(json_object_get(m, "consult"), "id"));
    } else if (op == OP_INVITE) {
        snprintf(cv->invite, sizeof(cv->invite), "%s",
                 cdev_str(json_object_get(m, "invite"), "code"));
    } else if (op == OP_CHAT_CREATE) {
        snprintf(cv->id, sizeof(cv->id), "%s", cdev_str(json_object_get(m, "conversation"), "id"));
    } else if (op == OP_CLAIM) {
        json_t *list = json_object_get(m, "key_packages");
        for (size_t i = 0; i < json_array_size(list); i++) {
            uint8_t **nk = realloc(cv->kps, (cv->n_kps + 1) * sizeof(*nk));
            size_t *nl = nk != NULL ? realloc(cv->kp_len, (cv->n_kps + 1) * sizeof(*nl)) : NULL;
            if (nk != NULL) {
                cv->kps = nk;
            }
            if (nl == NULL) {
                break;
            }
            cv->kp_len = nl;
            cv->kps[cv->n_kps] = cdev_unb64(cdev_str(json_array_get(list, i), "key_package"),
                                            &cv->kp_len[cv->n_kps]);
            cv->n_kps += cv->kps[cv->n_kps] != NULL;
        }
    }
    cv->pc++;
    lc_advance(cv);
}

static bool all(const lc_conv_t *cv, bool synced)
{
    for (int i = 0; i < cv->n; i++) {
        if (synced ? !cv->devs[i].synced : (i > 0 && !cv->devs[i].joined)) {
            return false;
        }
    }
    return true;
}

static json_t *user_of(const lc_dev_t *v)
{
    const char *sub = strcmp(v->role, "patient") == 0 && v->d != NULL ? v->d->participant : v->sub;
    return json_pack("{s:s}", "sub", sub);
}

/* Runs the plan until it waits for an answer or a condition. */
void lc_advance(lc_conv_t *cv)
{
    lc_t *L = cv->L;
    cdev_t *gp = cv->devs[0].d;
    while (!cv->busy && !cv->failed && cv->pc < cv->n_plan && cv->devs[0].synced) {
        lc_op_t op = cv->plan[cv->pc].op;
        lc_dev_t *v = &cv->devs[cv->plan[cv->pc].arg];
        json_t *req = NULL;
        switch (op) {
        case OP_CONSULT_CREATE: {
            char patient[48];
            snprintf(patient, sizeof(patient), "pseudo-load-%d", cv->idx);
            req = json_pack("{s:s, s:s, s:s}", "type", "consult.create", "patient", patient,
                            "title", "spreekload chat");
            break;
        }
        case OP_INVITE:
            req = json_pack("{s:s, s:s}", "type", "invite.create", "consult", cv->consult);
            break;
        case OP_JOIN:
            req = json_pack("{s:s, s:s}", "type", "consult.join", "consult", cv->consult);
            break;
        case OP_CHAT_CREATE:
            if (strcmp(cv->kind, "care_team") == 0) {
                char patient[64];
                snprintf(patient, sizeof(patient), "%spseudo-load-%d", L->prefix, cv->idx);
                req = json_pack("{s:s, s:s, s:s}", "type", "chat.create", "kind", cv->kind,
                                "patient", patient);
            } else {
                req = json_pack("{s:s, s:s, s:s}", "type", "chat.create", "kind", cv->kind,
                                "consult", cv->consult);
            }
            break;
        case OP_ADD_MEMBER:
            req = json_pack("{s:s, s:s, s:o, s:s}", "type", "chat.members.add", "conversation",
                            cv->id, "user", user_of(v), "role", v->role);
            break;
        case OP_ADMIT:
            req = json_pack("{s:s, s:s, s:s}", "type", "lobby.admit", "consult", cv->consult,
                            "participant", v->d->participant);
            break;
        case OP_CLAIM:
            req = json_pack("{s:s, s:s, s:o}", "type", "mls.key_packages.claim", "conversation",
                            cv->id, "user", user_of(v));
            break;
        case OP_START:
            lc_dev_start(L, v);
            cv->pc++;
            continue;
        case OP_WAIT_READY:
            if (!v->synced) {
                return;
            }
            cv->pc++;
            continue;
        case OP_WAIT_SYNCED:
        case OP_WAIT_JOINED:
            if (!all(cv, op == OP_WAIT_SYNCED)) {
                return;
            }
            cv->pc++;
            continue;
        case OP_GROUP:
            cv->busy = true;
            cdev_group_create(gp, cv->id, op_done, cv);
            continue;
        case OP_COMMIT: {
            cdev_commit_opts_t o = {.add = (const uint8_t *const *)cv->kps,
                                    .add_len = cv->kp_len,
                                    .n_add = cv->n_kps,
                                    .retries = 3};
            cv->busy = true;
            cdev_commit(gp, cv->id, &o, op_done, cv);
            continue;
        }
        case OP_DONE:
            cv->ready = true;
            cv->pc++;
            L->n_ready_convs++;
            for (int i = 0; i < cv->n; i++) {
                cdev_conv_t *c = cdev_conv(cv->devs[i].d, cv->id, false);
                if (c != NULL) {
                    c->decrypt = L->decrypt_all;
                    c->data = cv;
                }
            }
            continue;
        }
        cv->busy = true;
        cdev_request(gp, req, op_done, cv);
    }
}

static void dev_init(lc_conv_t *cv, int i, const char *role, const char *sub, const char *device)
{
    lc_dev_t *v = &cv->devs[i];
    v->cv = cv;
    v->idx = i;
    snprintf(v->role, sizeof(v->role), "%s", role);
    snprintf(v->sub, sizeof(v->sub), "%s", sub);
    snprintf(v->device, sizeof(v->device), "%s", device);
}

#define PLAN(o, a)                                                                                 \
    do {                                                                                           \
        cv->plan[cv->n_plan].op = (o);                                                             \
        cv->plan[cv->n_plan++].arg = (a);                                                          \
    } while (0)

/* Devices and plan: care_team [gp, assistant, partners..., gp desktop at 5, more partners];
 * consult [gp, patient phone, assistant, patient laptop, gp desktop]. */
static void conv_init(lc_t *L, lc_conv_t *cv, int idx)
{
    cv->L = L;
    cv->idx = idx;
    cv->kind = strcmp(L->kind, "mixed") == 0 ? (idx % 2 ? "consult" : "care_team") : L->kind;
    bool care = strcmp(cv->kind, "care_team") == 0;
    int k = care ? L->k : (L->k < 5 ? L->k : 5);
    cv->n = k;
    snprintf(cv->practice, sizeof(cv->practice), "praktijk-load-%d", idx % 50);
    char gp[48], sub[64];
    snprintf(gp, sizeof(gp), "%sgp-load-%d", L->prefix, idx);
    dev_init(cv, 0, "gp", gp, "laptop");
    bool two_gp = false;
    for (int i = 1; i < k; i++) {
        if (care && i == 5) {
            dev_init(cv, i, "gp", gp, "desktop");
            two_gp = true;
        } else if (care && i == 1) {
            snprintf(sub, sizeof(sub), "%sda-load-%d", L->prefix, idx);
            dev_init(cv, i, "assistant", sub, "pc");
        } else if (care) {
            snprintf(sub, sizeof(sub), "%spartner-load-%d-%d", L->prefix, idx, i);
            dev_init(cv, i, "partner", sub, "pc");
        } else if (i == 1 || i == 3) {
            dev_init(cv, i, "patient", "", i == 1 ? "phone" : "laptop");
            cv->devs[i].second_patient = i == 3;
        } else if (i == 2) {
            snprintf(sub, sizeof(sub), "%sda-load-%d", L->prefix, idx);
            dev_init(cv, i, "assistant", sub, "pc");
        } else {
            dev_init(cv, i, "gp", gp, "desktop");
            two_gp = true;
        }
    }
    if (care) {
        PLAN(OP_CHAT_CREATE, 0);
        for (int i = 1; i < k; i++) {
            if (strcmp(cv->devs[i].role, "gp") != 0) {
                PLAN(OP_ADD_MEMBER, i);
            }
        }
    } else {
        PLAN(OP_CONSULT_CREATE, 0);
        PLAN(OP_INVITE, 0);
        PLAN(OP_JOIN, 0);
        PLAN(OP_CHAT_CREATE, 0);
        if (k > 2) {
            PLAN(OP_ADD_MEMBER, 2);
        }
        if (k > 1) {
            PLAN(OP_START, 1);
            PLAN(OP_WAIT_READY, 1);
            PLAN(OP_ADMIT, 1);
            PLAN(OP_ADD_MEMBER, 1);
        }
        if (k > 3) {
            PLAN(OP_START, 3);
        }
    }
    PLAN(OP_GROUP, 0);
    PLAN(OP_WAIT_SYNCED, 0);
    for (int i = 1; i < k; i++) {
        bool first_of_user = strcmp(cv->devs[i].role, "gp") != 0 && !cv->devs[i].second_patient;
        if (first_of_user) {
            PLAN(OP_CLAIM, i);
        }
    }
    if (two_gp) {
        PLAN(OP_CLAIM, 0); /* the GP's own second device */
    }
    PLAN(OP_COMMIT, 0);
    PLAN(OP_WAIT_JOINED, 0);
    PLAN(OP_DONE, 0);
    cv->sample = idx < L->sample;
}

/* ---- loop ---- */

static void tick_cb(uv_timer_t *t)
{
    start_pump(t->data);
}

bool lc_run_until(lc_t *L, bool (*cond)(lc_t *), double ms)
{
    uint64_t end = spk_mono_ns() + (uint64_t)(ms * 1e6);
    while (!(cond != NULL && cond(L)) && spk_mono_ns() < end) {
        uv_run(&L->loop, UV_RUN_ONCE);
    }
    return cond != NULL ? cond(L) : true;
}

/* Called by the device callbacks (load_chat_run.c). */
void lc_dev_ready(lc_t *L, lc_dev_t *v);
void lc_dev_ready(lc_t *L, lc_dev_t *v)
{
    if (L->n_connecting > 0) {
        L->n_connecting--;
    }
    start_pump(L);
    (void)v;
}

static bool setup_done(lc_t *L)
{
    size_t failed = 0;
    for (int c = 0; c < L->conversations; c++) {
        failed += L->cs[c].failed;
    }
    return L->n_ready_convs + failed == (size_t)L->conversations;
}

/* ---- options ---- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: spreekload --chat [options]    (or: spreekload --chat-agent --port P)\n"
            "  --conversations N     conversations (20)\n"
            "  --devices K           devices per conversation (5; 2..%d, consult at most 5)\n"
            "  --kind K              care_team | consult | mixed (mixed: alternating)\n"
            "  --rates R1,R2,...     application messages per second offered, all conversations\n"
            "                        together, one measured step each (1000)\n"
            "  --duration S          seconds per step (10)\n"
            "  --size B              plaintext bytes per message (100)\n"
            "  --prefix P            before every user subject and patient, so that runs\n"
            "                        against one spreekd meet none of the earlier ones (<= 16)\n"
            "  --ack-ms MS           acknowledge cumulatively every MS ms; 0: each entry (1000)\n"
            "  --sample N            conversations whose messages are decrypted and checked\n"
            "                        after each step (10)\n"
            "  --decrypt-all         every device decrypts every message as it arrives\n"
            "  --crash-after S       kill -9 spreekd S seconds into the first step, restart it,\n"
            "                        reconnect, and verify that every acknowledged message is\n"
            "                        delivered once (needs --spreekd; implies --decrypt-all)\n"
            "  --turn-budget MS      spreekd's chat_turn_budget_ms (10): chat.send handled per\n"
            "                        loop turn before further input waits for the next turn\n"
            "  --expect-deferred     fail unless spreekd left messages for a later loop turn\n"
            "                        (spk_rx_deferred_total: an overload test)\n"
            "  --commit-sizes N,...  instead of messages: Commit handling at these group sizes\n"
            "  --commits N           Commits measured per size (20)\n"
            "  --setup-timeout S     (120)\n"
            "  --drain-timeout S     after each step, wait at most S for every delivery (20;\n"
            "                        60 after a kill); later ones count as incomplete\n"
            "  --spreekd PATH        start this spreekd (temporary data dir, free port)\n"
            "  --tmpdir DIR          where that data directory goes (/tmp; /dev/shm: no disk)\n"
            "  --port P --pid PID --data DIR   use a running spreekd instead\n"
            "  --verbose\n",
            LC_MAX_DEVS);
}

static int parse_list(const char *s, double *out, int max)
{
    int n = 0;
    while (*s != '\0' && n < max) {
        char *end;
        double v = strtod(s, &end);
        if (end == s || v <= 0 || (*end != '\0' && *end != ',')) {
            return -1;
        }
        out[n++] = v;
        s = *end == ',' ? end + 1 : end;
    }
    return n;
}

static int parse_args(lc_t *L, int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i];
        if (strcmp(k, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(k, "--decrypt-all") == 0 || strcmp(k, "--verbose") == 0) {
            *(k[2] == 'd' ? &L->decrypt_all : &L->verbose) = true;
            continue;
        }
        if (strcmp(k, "--expect-deferred") == 0) {
            L->expect_deferred = true;
            continue;
        }
        const char *v = i + 1 < argc ? argv[++i] : NULL;
        if (v == NULL) {
            return -1;
        }
        if (strcmp(k, "--conversations") == 0) {
            L->conversations = atoi(v);
        } else if (strcmp(k, "--devices") == 0) {
            L->k = atoi(v);
        } else if (strcmp(k, "--kind") == 0) {
            L->kind = v;
        } else if (strcmp(k, "--rates") == 0) {
            L->n_rates = parse_list(v, L->rates, LC_MAX_STEPS);
        } else if (strcmp(k, "--duration") == 0) {
            L->duration_s = atof(v);
        } else if (strcmp(k, "--prefix") == 0) {
            L->prefix = v;
        } else if (strcmp(k, "--size") == 0) {
            L->size = (size_t)atoi(v);
        } else if (strcmp(k, "--ack-ms") == 0) {
            L->ack_ms = atoi(v);
        } else if (strcmp(k, "--sample") == 0) {
            L->sample = atoi(v);
        } else if (strcmp(k, "--turn-budget") == 0) {
            L->turn_budget_ms = atoi(v);
        } else if (strcmp(k, "--crash-after") == 0) {
            L->crash_after_s = atof(v);
        } else if (strcmp(k, "--commit-sizes") == 0) {
            double sz[8];
            L->n_commit_sizes = parse_list(v, sz, 8);
            for (int j = 0; j < L->n_commit_sizes; j++) {
                L->commit_sizes[j] = (int)sz[j];
            }
        } else if (strcmp(k, "--commits") == 0) {
            L->commits = atoi(v);
        } else if (strcmp(k, "--setup-timeout") == 0) {
            L->setup_timeout_s = atof(v);
        } else if (strcmp(k, "--drain-timeout") == 0) {
            L->drain_timeout_s = atof(v);
        } else if (strcmp(k, "--spreekd") == 0) {
            L->spreekd = v;
        } else if (strcmp(k, "--tmpdir") == 0) {
            L->tmpdir = v;
        } else if (strcmp(k, "--port") == 0) {
            L->port = atoi(v);
        } else if (strcmp(k, "--pid") == 0) {
            L->pid = atoi(v);
        } else if (strcmp(k, "--data") == 0) {
            snprintf(L->data, sizeof(L->data), "%s", v);
        } else {
            return -1;
        }
    }
    bool kind_ok = strcmp(L->kind, "care_team") == 0 || strcmp(L->kind, "consult") == 0 ||
                   strcmp(L->kind, "mixed") == 0;
    bool server = L->spreekd != NULL || (L->port > 0 && L->data[0] != '\0');
    if (L->crash_after_s > 0) {
        L->decrypt_all = true;
    }
    return L->conversations >= 1 && L->conversations <= 100000 && L->k >= 2 &&
                   L->k <= LC_MAX_DEVS && kind_ok && L->n_rates > 0 && L->duration_s > 0 &&
                   L->size >= 24 && L->size <= 40000 && L->ack_ms >= 0 && server &&
                   strlen(L->prefix) <= 16 && L->n_commit_sizes >= 0 &&
                   (L->crash_after_s <= 0 || L->spreekd != NULL)
               ? 0
               : -1;
}

/* ---- main ---- */

static int env_init(lc_t *L)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/issuer.key", L->data);
    if (spk_signer_load(&L->signer, path) != 0) {
        fprintf(stderr, "spreekload: cannot load %s\n", path);
        return -1;
    }
    uv_loop_init(&L->loop);
    cdev_env_init(&L->env, &L->loop, L->port, &lc_cbs, L->ack_ms);
    L->env.data = L;
    uv_timer_init(&L->loop, &L->tick);
    L->tick.data = L;
    uv_timer_start(&L->tick, tick_cb, 10, 10);
    L->cs = calloc((size_t)L->conversations, sizeof(*L->cs));
    L->all = calloc((size_t)L->conversations * LC_MAX_DEVS, sizeof(*L->all));
    if (L->cs == NULL || L->all == NULL) {
        return -1;
    }
    for (int c = 0; c < L->conversations; c++) {
        conv_init(L, &L->cs[c], c);
        for (int i = 0; i < L->cs[c].n; i++) {
            L->all[L->n_all++] = &L->cs[c].devs[i];
        }
    }
    return 0;
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

static void env_free(lc_t *L)
{
    L->closing = true;
    for (int c = 0; L->cs != NULL && c < L->conversations; c++) {
        lc_conv_t *cv = &L->cs[c];
        for (int i = 0; i < cv->n; i++) {
            lc_dev_t *v = &cv->devs[i];
            cdev_free(v->d);
            for (size_t j = 0; j < v->qn; j++) {
                free(v->q[j]);
            }
            free(v->q);
            for (size_t j = 0; j < v->n_rx; j++) {
                free(v->rx[j].p);
            }
            free(v->rx);
            free(v->got);
            free(v->msgs);
        }
        for (size_t j = 0; j < cv->n_kps; j++) {
            free(cv->kps[j]);
        }
        free(cv->kps);
        free(cv->kp_len);
        free(cv->slots);
    }
    free(L->cs);
    free(L->all);
    free(L->start_q);
    free(L->sends);
    for (size_t i = 0; i < L->n_retired; i++) {
        free(L->retired[i]);
    }
    free(L->retired);
    if (L->env.loop != NULL) {
        cdev_env_close(&L->env);
        uv_walk(&L->loop, close_walk, NULL);
        uv_run(&L->loop, UV_RUN_DEFAULT);
        if (uv_loop_close(&L->loop) != 0) {
            fprintf(stderr, "spreekload: uv handles left open\n");
        }
    }
    spk_signer_wipe(&L->signer);
}

int load_chat_main(int argc, char **argv)
{
    if (strcmp(argv[1], "--chat-agent") == 0) {
        int port = argc == 4 && strcmp(argv[2], "--port") == 0 ? atoi(argv[3]) : 0;
        if (port <= 0) {
            usage(stderr);
            return 2;
        }
        return load_chat_agent(port);
    }
    lc_t *L = calloc(1, sizeof(*L));
    if (L == NULL) {
        return 1;
    }
    L->conversations = 20;
    L->k = 5;
    L->kind = "mixed";
    L->prefix = "";
    L->rates[0] = 1000;
    L->n_rates = 1;
    L->duration_s = 10;
    L->size = 100;
    L->ack_ms = 1000;
    L->sample = 10;
    L->commits = 20;
    L->setup_timeout_s = 120;
    L->max_connecting = 128;
    L->tmpdir = "/tmp";
    L->step = -1;
    if (parse_args(L, argc, argv) != 0) {
        usage(stderr);
        free(L);
        return 2;
    }
    if (L->spreekd != NULL && lc_server_start(L) != 0) {
        lc_server_stop(L);
        free(L);
        return 1;
    }
    fprintf(stderr, "spreekload: spreekd pid %d port %d\n", L->pid, L->port);
    int rc = 1;
    json_t *out = json_object();
    if (env_init(L) == 0) {
        uint64_t t0 = spk_mono_ns();
        if (L->n_commit_sizes > 0) {
            rc = lc_run_commits(L, out);
        } else {
            for (size_t i = 0; i < L->n_all; i++) {
                if (strcmp(L->all[i]->role, "patient") != 0) {
                    lc_dev_start(L, L->all[i]);
                }
            }
            bool ok = lc_run_until(L, setup_done, L->setup_timeout_s * 1000);
            double setup_s = (double)(spk_mono_ns() - t0) / 1e9;
            fprintf(stderr, "spreekload: %zu of %d conversations set up in %.1f s\n",
                    L->n_ready_convs, L->conversations, setup_s);
            json_object_set_new(out, "setup_s", json_real(setup_s));
            rc = ok && L->n_ready_convs == (size_t)L->conversations ? lc_run_steps(L, out) : 1;
            if (json_object_get(out, "connections_lost") == NULL) {
                lc_lost_json(L, out); /* the set-up did not complete */
            }
        }
    }
    json_object_set_new(out, "setup_errors", json_integer((json_int_t)L->setup_errors));
    json_object_set_new(out, "first_error", json_string(L->first_error));
    char *txt = json_dumps(out, JSON_COMPACT | JSON_REAL_PRECISION(6));
    printf("%s\n", txt != NULL ? txt : "{}");
    fflush(stdout);
    free(txt);
    json_decref(out);
    env_free(L);
    lc_server_stop(L);
    free(L);
    return rc;
}

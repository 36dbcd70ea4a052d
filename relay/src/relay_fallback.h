/* Audio-only fallback: whether the relay forwards video to a subscriber whose link cannot carry
 * it. No I/O, no allocation, no clock of its own (the caller passes milliseconds).
 *
 * Fed with the loss the subscriber reports (spk_fallback_report): the worst fraction lost
 * (RFC 3550 scale: lost / expected * 256) of the video and of the audio it receives from the
 * relay, -1 for a kind without news. The fraction is not the one in the report block: Chromium
 * sends a receiver report with every NACK, many a second, and the fraction of each covers only
 * the few packets since the previous one (mostly 0 on a link that loses half of them, with the
 * rest repaired). spk_loss_window_t measures each stream over at least SPK_FALLBACK_WINDOW_MS
 * instead, from the reports' cumulative loss and extended highest sequence number. A subscriber's
 * REMB is not used: Chromium's receive-side estimate is bounded by what arrives, so it falls
 * while only audio flows and climbs back by about 8 % a second once video resumes; acting on it
 * would keep video off, or turn it off again right after every try.
 *
 * The thresholds below are the defaults; spk_relay_config_t.fallback sets them per relay.
 * A report is weak when video loss is above SPK_FALLBACK_LOSS_OFF (about 20 %). Video goes off when
 * reports have been weak, without a report in between that was not, for SPK_FALLBACK_WEAK_MS and at
 * least SPK_FALLBACK_WEAK_N reports. Reports in the first SPK_FALLBACK_GRACE_MS after video went
 * (back) on do not count: the sequence gap of the paused period shows as loss in the first report
 * after it.
 *
 * While video is off only audio flows, so video loss says nothing; the relay tries video again
 * (a probe) backoff ms after it went off, provided audio loss stays at most SPK_FALLBACK_LOSS_ON
 * (about 5 %; a lossier audio report restarts the wait). The backoff starts at
 * SPK_FALLBACK_BACKOFF_MS and doubles, up to SPK_FALLBACK_BACKOFF_MAX_MS, each time video goes off
 * again within SPK_FALLBACK_STABLE_MS of coming back; it returns to the start once video stayed on
 * that long. So a link that cannot carry video costs a few seconds of loss per probe, ever more
 * rarely, and never flaps. */
#ifndef SPK_RELAY_FALLBACK_H
#define SPK_RELAY_FALLBACK_H

#include <stdbool.h>
#include <stdint.h>

#include "spk/relay.h"

/* The defaults of spk_relay_fallback_rule_t (spreekd config keys relay_fallback_*). */
#define SPK_FALLBACK_LOSS_OFF 51 /* fraction lost: ~20 % */
#define SPK_FALLBACK_LOSS_ON 13  /* fraction lost: ~5 % */
#define SPK_FALLBACK_WEAK_MS 2500u
#define SPK_FALLBACK_WEAK_N 2u
#define SPK_FALLBACK_GRACE_MS 1500u
#define SPK_FALLBACK_BACKOFF_MS 8000u
#define SPK_FALLBACK_BACKOFF_MAX_MS 64000u
#define SPK_FALLBACK_STABLE_MS 30000u
#define SPK_FALLBACK_WINDOW_MS 1000u

typedef enum {
    SPK_FALLBACK_SAME = 0,  /* nothing changes */
    SPK_FALLBACK_VIDEO_OFF, /* stop forwarding video to this subscriber */
    SPK_FALLBACK_VIDEO_ON,  /* forward video again */
} spk_fallback_change_t;

typedef struct {
    spk_relay_fallback_rule_t r; /* its thresholds */
    bool video_off;
    uint32_t weak_n;     /* weak reports in a row */
    uint64_t weak_since; /* ms of the first of them */
    uint64_t changed_at; /* ms video last went off or on */
    uint64_t wait_from;  /* while off: ms the wait for a probe (re)started */
    uint32_t backoff_ms; /* current wait before a probe */
    uint32_t n_off;      /* times video went off (for stats) */
} spk_fallback_t;

/* The default thresholds (the SPK_FALLBACK_* values). */
void spk_fallback_rule_defaults(spk_relay_fallback_rule_t *r);

/* Whether a rule is usable (see spk_relay_config_t). */
bool spk_fallback_rule_ok(const spk_relay_fallback_rule_t *r);

/* Video on; the backoff at its start. spk_fallback_init uses the default thresholds,
 * spk_fallback_init_rule those of r (copied). */
void spk_fallback_init(spk_fallback_t *f, uint64_t now_ms);
void spk_fallback_init_rule(spk_fallback_t *f, uint64_t now_ms, const spk_relay_fallback_rule_t *r);

/* One receiver report (see above); returns the change to make, if any. */
spk_fallback_change_t spk_fallback_report(spk_fallback_t *f, uint64_t now_ms, int video_loss,
                                          int audio_loss);

/* The loss of one stream as a subscriber reports it, over windows of at least
 * SPK_FALLBACK_WINDOW_MS. */
typedef struct {
    uint32_t ssrc;
    bool used;
    bool have_base;
    bool skip;        /* discard the next window (it spans a jump in the numbering) */
    uint64_t base_ms; /* start of the current window */
    int32_t base_lost;
    uint32_t base_hi;
} spk_loss_window_t;

void spk_loss_window_init(spk_loss_window_t *w, uint32_t ssrc);

/* Starts over at the next report, discarding the window after it: the stream's numbering
 * jumps (video withheld and resumed, the subscriber back from the lobby). */
void spk_loss_window_restart(spk_loss_window_t *w);

/* One report block (cumulative lost, extended highest sequence number received). Returns the
 * fraction lost 0..255 over the window that this report completes (at least
 * SPK_FALLBACK_WINDOW_MS since the previous window ended), or -1: window not complete, nothing
 * expected in it (no packets: e.g. video withheld), discarded, or the counters went backwards
 * (the window starts over). Duplicates (negative loss) count as none lost. */
int spk_loss_window_update(spk_loss_window_t *w, uint64_t now_ms, int32_t cum_lost,
                           uint32_t ext_hi);

#endif

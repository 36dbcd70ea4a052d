/* Audio-only fallback: whether the relay forwards video to a subscriber whose link cannot carry
 * it. No I/O, no allocation, no clock of its own (the caller passes milliseconds).
 *
 * Fed with every receiver report the subscriber sends (spk_fallback_report): the worst RTCP
 * "fraction lost" (RFC 3550: lost / expected * 256) of the video and of the audio it receives
 * from the relay in that report, -1 for a kind the report says nothing about, and the bitrate of
 * its latest REMB (0 = none seen).
 *
 * A report is weak when video loss is above SPK_FALLBACK_LOSS_OFF (about 20 %) or the REMB is
 * below SPK_FALLBACK_MIN_VIDEO_BPS. Video goes off when reports have been weak, without a
 * report in between that was not, for SPK_FALLBACK_WEAK_MS and at least SPK_FALLBACK_WEAK_N
 * reports. Reports in the first SPK_FALLBACK_GRACE_MS after video went (back) on do not count:
 * the sequence gap of the paused period shows as loss in the first report after it.
 *
 * While video is off only audio flows, so video loss says nothing; the relay tries video again
 * (a probe) backoff ms after it went off, provided audio loss stays below SPK_FALLBACK_LOSS_ON
 * (about 5 %) and any REMB is at least SPK_FALLBACK_MIN_VIDEO_BPS (a lossy or weak audio report
 * restarts the wait). The backoff starts at SPK_FALLBACK_BACKOFF_MS and doubles, up to
 * SPK_FALLBACK_BACKOFF_MAX_MS, each time video goes off again within SPK_FALLBACK_STABLE_MS of
 * coming back; it returns to the start once video stayed on that long. So a link that cannot
 * carry video costs a few seconds of loss per probe, ever more rarely, and never flaps. */
#ifndef SPK_RELAY_FALLBACK_H
#define SPK_RELAY_FALLBACK_H

#include <stdbool.h>
#include <stdint.h>

#define SPK_FALLBACK_LOSS_OFF 51 /* fraction lost: ~20 % */
#define SPK_FALLBACK_LOSS_ON 13  /* fraction lost: ~5 % */
#define SPK_FALLBACK_MIN_VIDEO_BPS 100000u
#define SPK_FALLBACK_WEAK_MS 2500u
#define SPK_FALLBACK_WEAK_N 2u
#define SPK_FALLBACK_GRACE_MS 1500u
#define SPK_FALLBACK_BACKOFF_MS 8000u
#define SPK_FALLBACK_BACKOFF_MAX_MS 64000u
#define SPK_FALLBACK_STABLE_MS 30000u

typedef enum {
    SPK_FALLBACK_SAME = 0,  /* nothing changes */
    SPK_FALLBACK_VIDEO_OFF, /* stop forwarding video to this subscriber */
    SPK_FALLBACK_VIDEO_ON,  /* forward video again */
} spk_fallback_change_t;

typedef struct {
    bool video_off;
    uint32_t weak_n;     /* weak reports in a row */
    uint64_t weak_since; /* ms of the first of them */
    uint64_t changed_at; /* ms video last went off or on */
    uint64_t wait_from;  /* while off: ms the wait for a probe (re)started */
    uint32_t backoff_ms; /* current wait before a probe */
    uint32_t n_off;      /* times video went off (for stats) */
} spk_fallback_t;

/* Video on; the backoff at its start. */
void spk_fallback_init(spk_fallback_t *f, uint64_t now_ms);

/* One receiver report (see above); returns the change to make, if any. */
spk_fallback_change_t spk_fallback_report(spk_fallback_t *f, uint64_t now_ms, int video_loss,
                                          int audio_loss, uint64_t remb_bps);

#endif

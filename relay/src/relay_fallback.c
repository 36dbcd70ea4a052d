/* Audio-only fallback; see relay_fallback.h. */
#include "relay_fallback.h"

void spk_fallback_init(spk_fallback_t *f, uint64_t now_ms)
{
    f->video_off = false;
    f->weak_n = 0;
    f->weak_since = 0;
    f->changed_at = now_ms;
    f->wait_from = now_ms;
    f->backoff_ms = SPK_FALLBACK_BACKOFF_MS;
    f->n_off = 0;
}

static bool remb_weak(uint64_t remb_bps)
{
    return remb_bps != 0 && remb_bps < SPK_FALLBACK_MIN_VIDEO_BPS;
}

static spk_fallback_change_t while_on(spk_fallback_t *f, uint64_t now_ms, int video_loss,
                                      uint64_t remb_bps)
{
    if (now_ms - f->changed_at < SPK_FALLBACK_GRACE_MS) {
        return SPK_FALLBACK_SAME;
    }
    if (now_ms - f->changed_at >= SPK_FALLBACK_STABLE_MS) {
        f->backoff_ms = SPK_FALLBACK_BACKOFF_MS;
    }
    bool weak = video_loss > SPK_FALLBACK_LOSS_OFF || remb_weak(remb_bps);
    if (!weak) {
        if (video_loss >= 0 || remb_bps != 0) {
            f->weak_n = 0; /* a report that speaks of video and is fine */
        }
        return SPK_FALLBACK_SAME;
    }
    if (f->weak_n++ == 0) {
        f->weak_since = now_ms;
    }
    if (f->weak_n < SPK_FALLBACK_WEAK_N || now_ms - f->weak_since < SPK_FALLBACK_WEAK_MS) {
        return SPK_FALLBACK_SAME;
    }
    /* Off again soon after a probe: wait longer before the next one. */
    if (f->n_off > 0 && now_ms - f->changed_at < SPK_FALLBACK_STABLE_MS) {
        uint32_t next = f->backoff_ms * 2u;
        f->backoff_ms = next > SPK_FALLBACK_BACKOFF_MAX_MS ? SPK_FALLBACK_BACKOFF_MAX_MS : next;
    }
    f->video_off = true;
    f->weak_n = 0;
    f->changed_at = now_ms;
    f->wait_from = now_ms;
    f->n_off++;
    return SPK_FALLBACK_VIDEO_OFF;
}

static spk_fallback_change_t while_off(spk_fallback_t *f, uint64_t now_ms, int audio_loss,
                                       uint64_t remb_bps)
{
    if (audio_loss > SPK_FALLBACK_LOSS_ON || remb_weak(remb_bps)) {
        f->wait_from = now_ms; /* even audio struggles: wait a full backoff from here */
        return SPK_FALLBACK_SAME;
    }
    if (now_ms - f->wait_from < f->backoff_ms) {
        return SPK_FALLBACK_SAME;
    }
    f->video_off = false;
    f->weak_n = 0;
    f->changed_at = now_ms;
    return SPK_FALLBACK_VIDEO_ON;
}

spk_fallback_change_t spk_fallback_report(spk_fallback_t *f, uint64_t now_ms, int video_loss,
                                          int audio_loss, uint64_t remb_bps)
{
    if (now_ms < f->changed_at) {
        now_ms = f->changed_at; /* the caller's clock is monotonic; be safe anyway */
    }
    return f->video_off ? while_off(f, now_ms, audio_loss, remb_bps)
                        : while_on(f, now_ms, video_loss, remb_bps);
}

/* Audio-only fallback; see relay_fallback.h. */
#include "relay_fallback.h"

void spk_fallback_rule_defaults(spk_relay_fallback_rule_t *r)
{
    r->loss_off = SPK_FALLBACK_LOSS_OFF;
    r->loss_on = SPK_FALLBACK_LOSS_ON;
    r->weak_ms = SPK_FALLBACK_WEAK_MS;
    r->weak_n = SPK_FALLBACK_WEAK_N;
    r->grace_ms = SPK_FALLBACK_GRACE_MS;
    r->backoff_ms = SPK_FALLBACK_BACKOFF_MS;
    r->backoff_max_ms = SPK_FALLBACK_BACKOFF_MAX_MS;
    r->stable_ms = SPK_FALLBACK_STABLE_MS;
}

bool spk_fallback_rule_ok(const spk_relay_fallback_rule_t *r)
{
    return r->loss_off >= 0 && r->loss_off <= 255 && r->loss_on >= 0 && r->loss_on <= r->loss_off &&
           r->weak_ms > 0 && r->weak_n > 0 && r->backoff_ms > 0 &&
           r->backoff_max_ms >= r->backoff_ms && r->stable_ms > 0;
}

void spk_fallback_init(spk_fallback_t *f, uint64_t now_ms)
{
    spk_relay_fallback_rule_t r;
    spk_fallback_rule_defaults(&r);
    spk_fallback_init_rule(f, now_ms, &r);
}

void spk_fallback_init_rule(spk_fallback_t *f, uint64_t now_ms, const spk_relay_fallback_rule_t *r)
{
    f->r = *r;
    f->video_off = false;
    f->weak_n = 0;
    f->weak_since = 0;
    f->changed_at = now_ms;
    f->wait_from = now_ms;
    f->backoff_ms = r->backoff_ms;
    f->n_off = 0;
}

static spk_fallback_change_t while_on(spk_fallback_t *f, uint64_t now_ms, int video_loss)
{
    if (now_ms - f->changed_at < f->r.grace_ms) {
        return SPK_FALLBACK_SAME;
    }
    if (now_ms - f->changed_at >= f->r.stable_ms) {
        f->backoff_ms = f->r.backoff_ms;
    }
    if (video_loss <= f->r.loss_off) {
        if (video_loss >= 0) {
            f->weak_n = 0; /* a report that speaks of video and is fine */
        }
        return SPK_FALLBACK_SAME;
    }
    if (f->weak_n++ == 0) {
        f->weak_since = now_ms;
    }
    if (f->weak_n < f->r.weak_n || now_ms - f->weak_since < f->r.weak_ms) {
        return SPK_FALLBACK_SAME;
    }
    /* Off again soon after a probe: wait longer before the next one. */
    if (f->n_off > 0 && now_ms - f->changed_at < f->r.stable_ms) {
        uint32_t next = f->backoff_ms * 2u;
        f->backoff_ms = next > f->r.backoff_max_ms ? f->r.backoff_max_ms : next;
    }
    f->video_off = true;
    f->weak_n = 0;
    f->changed_at = now_ms;
    f->wait_from = now_ms;
    f->n_off++;
    return SPK_FALLBACK_VIDEO_OFF;
}

static spk_fallback_change_t while_off(spk_fallback_t *f, uint64_t now_ms, int audio_loss)
{
    if (audio_loss > f->r.loss_on) {
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
                                          int audio_loss)
{
    if (now_ms < f->changed_at) {
        now_ms = f->changed_at; /* the caller's clock is monotonic; be safe anyway */
    }
    return f->video_off ? while_off(f, now_ms, audio_loss) : while_on(f, now_ms, video_loss);
}

void spk_loss_window_init(spk_loss_window_t *w, uint32_t ssrc)
{
    w->ssrc = ssrc;
    w->used = true;
    w->have_base = false;
    w->skip = false;
    w->base_ms = 0;
    w->base_lost = 0;
    w->base_hi = 0;
}

void spk_loss_window_restart(spk_loss_window_t *w)
{
    w->have_base = false;
    w->skip = true;
}

static void rebase(spk_loss_window_t *w, uint64_t now_ms, int32_t cum_lost, uint32_t ext_hi)
{
    w->have_base = true;
    w->base_ms = now_ms;
    w->base_lost = cum_lost;
    w->base_hi = ext_hi;
}

int spk_loss_window_update(spk_loss_window_t *w, uint64_t now_ms, int32_t cum_lost, uint32_t ext_hi)
{
    if (!w->have_base || now_ms < w->base_ms || ext_hi < w->base_hi) {
        rebase(w, now_ms, cum_lost, ext_hi);
        return -1;
    }
    if (now_ms - w->base_ms < SPK_FALLBACK_WINDOW_MS) {
        return -1;
    }
    int64_t expected = (int64_t)ext_hi - (int64_t)w->base_hi;
    int64_t lost = (int64_t)cum_lost - (int64_t)w->base_lost;
    bool skip = w->skip;
    w->skip = false;
    rebase(w, now_ms, cum_lost, ext_hi);
    if (skip || expected <= 0) {
        return -1;
    }
    if (lost <= 0) {
        return 0;
    }
    int64_t f = lost * 256 / expected;
    return f > 255 ? 255 : (int)f;
}

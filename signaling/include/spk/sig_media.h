/* Wiring between the signaling core and the media relay (spk/relay.h). Media is off while no
 * relay is set (spreekd without relay addresses): then the media.* actions answer not_found. */
#ifndef SPK_SIG_MEDIA_H
#define SPK_SIG_MEDIA_H

#include "spk/relay.h"
#include "spk/signaling.h"

/* Lets the core use `relay` (borrowed; must outlive the core or be unset with NULL before it
 * is destroyed). Without a relay the media.* actions answer not_found. */
void spk_sig_set_relay(spk_sig_t *s, spk_relay_t *relay);

/* The relay's event callback: pass it to spk_relay_new() with the core as `user`. */
void spk_sig_relay_event(spk_relay_t *relay, const spk_relay_event_t *ev, void *user);

#endif

/* Wiring between the signaling core and the media relay: the in-process relay or relay nodes,
 * both behind spk/relays.h. Media is off while no relay is set (spreekd without relay_addresses
 * and relay_nodes): then the media.* actions answer not_found. */
#ifndef SPK_SIG_MEDIA_H
#define SPK_SIG_MEDIA_H

#include "spk/relays.h"
#include "spk/signaling.h"

/* Lets the core use `relays` (borrowed; must outlive the core or be unset with NULL before it
 * is destroyed). Without one the media.* actions answer not_found. */
void spk_sig_set_relay(spk_sig_t *s, spk_relays_t *relays);

/* The relays' event callback: pass it to spk_relays_new_local() / spk_relays_new_remote() with
 * the core as `user`. */
void spk_sig_relay_event(const spk_relay_event_t *ev, void *user);

#endif

/* Glue for the WebAssembly build of spk_mls (scripts/setup-webmls.sh): the layout of the
 * structs that web/mls/spk_mls.js fills in wasm memory, so that the wrapper can check its own
 * constants against the compiler's at load time. Everything else it calls is spk/mls.h and
 * spk/error.h as they are. */
#include <stddef.h>
#include <stdint.h>

#include "spk/error.h"
#include "spk/mls.h"

/* Sizes and offsets, in the order the wrapper lists them (web/mls/spk_mls.js, LAYOUT). */
static const uint32_t layout[] = {
    sizeof(void *),
    sizeof(size_t),
    sizeof(spk_mls_buf_t),
    offsetof(spk_mls_buf_t, p),
    offsetof(spk_mls_buf_t, n),
    sizeof(spk_mls_commit_opts_t),
    offsetof(spk_mls_commit_opts_t, add),
    offsetof(spk_mls_commit_opts_t, add_len),
    offsetof(spk_mls_commit_opts_t, n_add),
    offsetof(spk_mls_commit_opts_t, remove),
    offsetof(spk_mls_commit_opts_t, n_remove),
    offsetof(spk_mls_commit_opts_t, flags),
    sizeof(spk_mls_event_t),
    offsetof(spk_mls_event_t, type),
    offsetof(spk_mls_event_t, data),
    SPK_MLS_EPOCH_AUTHENTICATOR_LEN,
    SPK_MLS_MAX_MESSAGE,
    sizeof(spk_mls_event_info_t),
    offsetof(spk_mls_event_info_t, epoch),
    offsetof(spk_mls_event_info_t, sender),
    offsetof(spk_mls_event_info_t, sender_identity),
    offsetof(spk_mls_event_info_t, sender_identity_len),
    offsetof(spk_mls_event_info_t, authenticated_data),
    offsetof(spk_mls_event_info_t, authenticated_data_len),
    offsetof(spk_mls_event_info_t, joined),
    offsetof(spk_mls_event_info_t, n_joined),
    offsetof(spk_mls_event_info_t, left),
    offsetof(spk_mls_event_info_t, n_left),
    sizeof(spk_mls_member_t),
    offsetof(spk_mls_member_t, leaf),
    offsetof(spk_mls_member_t, identity),
    offsetof(spk_mls_member_t, identity_len),
};

uint32_t spk_wasm_layout(uint32_t i)
{
    return i < sizeof(layout) / sizeof(layout[0]) ? layout[i] : UINT32_MAX;
}

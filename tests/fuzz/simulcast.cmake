# Simulcast at the relay: the VP8 payload descriptor of peer RTP, and the rewriting across layer
# switches that acts on it (spk/simulcast.h).
if(TARGET spk_relay_core)
  spk_add_fuzz(simulcast LIBS spk_relay_core)
endif()

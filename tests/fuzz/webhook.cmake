# Webhooks of practice systems: the endpoint URL as registered and delivered to
# (fuzz_webhook_url.c; common/src/url.c) and the status line of the endpoint's answer
# (fuzz_webhook_answer.c; signaling/src/webhook_answer.c).
if(TARGET spk_signaling)
  spk_add_fuzz(webhook_url LIBS spk_common)
  spk_add_fuzz(webhook_answer LIBS spk_signaling)
endif()

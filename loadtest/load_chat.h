/* spreekload's chat modes (docs/performance.md, "Chat"): C chat devices (chat_dev.h) through a
 * real spreekd. `spreekload --chat ...` runs the load (load_chat.c); `spreekload --chat-agent
 * --port P` hands C devices to a test over stdin/stdout (chat_agent.c). */
#ifndef SPK_LOAD_CHAT_H
#define SPK_LOAD_CHAT_H

/* Entered from spreekload's main when its first argument is --chat or --chat-agent. */
int load_chat_main(int argc, char **argv);
/* The agent on a spreekd listening on 127.0.0.1:port; returns the exit code. */
int load_chat_agent(int port);

#endif

/* Text that comes from peers and ends up in front of people (names, titles, reasons) or in the
 * audit log: what is accepted, and how it is cut.
 *
 * Accepted text is valid UTF-8 (no overlong forms, no surrogates, at most U+10FFFF) without:
 *   - control characters: U+0000..U+001F, U+007F, U+0080..U+009F;
 *   - bidirectional formatting: U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069;
 *   - zero-width and invisible characters: U+00AD, U+034F, U+115F, U+1160, U+17B4, U+17B5,
 *     U+180E, U+200B..U+200D, U+2060..U+2064, U+3164, U+FEFF, U+FFA0, U+E0000..U+E007F;
 *   - line and paragraph separators U+2028, U+2029, and the noncharacters U+FFFE, U+FFFF.
 * So a display name cannot hide a second line, reorder what follows it, or look like another
 * name through invisible characters. docs/protocol.md lists the same set. */
#ifndef SPK_TEXT_H
#define SPK_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* True when s[0..n) is accepted text (see above). */
bool spk_text_ok(const char *s, size_t n);
/* Copies the NUL-terminated src into dst (cap >= 1 bytes including the NUL), cutting on a UTF-8
 * character boundary when it does not fit. Returns the number of bytes copied (without NUL). */
size_t spk_utf8_copy(char *dst, size_t cap, const char *src);
/* Copies src into dst for display, with every character that is not accepted text written as
 * "\u{XXXX}" and every invalid byte as "\xNN" (a backslash itself as "\\"), cut on a
 * character boundary when it does not fit. Returns the bytes written (without NUL). */
size_t spk_text_escape(char *dst, size_t cap, const char *src);

#endif

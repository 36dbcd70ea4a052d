/* Ratchet tree: array tree math (Appendix C), ratchet_tree encoding (§12.4.3.3) and the tree
 * modifications of Add, Update and Remove (§12.1.1-§12.1.3, §7.7). */
#include "mls/tree.h"
#include "mls/structs_int.h"
#include "mls/tree_int.h"

#include "spk/error.h"

#include <stdlib.h>
#include <string.h>

/* ---- encoding ---- */

static int opt_node_rd_(spk_mls_reader_t *r, void *e)
{
    spk_mls_node_t *node = e;
    bool present = false;
    memset(node, 0, sizeof(*node));
    if (spk_mls_read_optional(r, &present) != 0) {
        return r->err;
    }
    return present ? spk_mls_node_read(r, node) : 0;
}

static void node_fr_(void *e)
{
    spk_mls_node_free((spk_mls_node_t *)e);
}

int spk_mls_tree_read(spk_mls_reader_t *r, spk_mls_tree_t *out)
{
    void *a;
    size_t n;
    memset(out, 0, sizeof(*out));
    if (spk_mls_vec_read(r, &a, &n, sizeof(spk_mls_node_t), SPK_MLS_MAX_TREE_NODES, opt_node_rd_,
                         node_fr_) != 0) {
        return r->err;
    }
    spk_mls_node_t *nodes = a;
    int rc = 0;
    if (n == 0 || nodes[n - 1].type == SPK_MLS_NODE_BLANK) {
        rc = SPK_EDECODE;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint8_t want = (i % 2 == 0) ? SPK_MLS_NODE_LEAF : SPK_MLS_NODE_PARENT;
        if (nodes[i].type != SPK_MLS_NODE_BLANK && nodes[i].type != want) {
            rc = SPK_EDECODE;
        }
    }
    uint32_t leaves = 1;
    while (rc == 0 && spk_mls_tm_node_width(leaves) < n) {
        leaves *= 2;
    }
    /* Unmerged leaves must lie below their parent: the rest of the tree code relies on it. */
    for (size_t i = 1; rc == 0 && i < n; i += 2) {
        const spk_mls_parent_node_t *p = &nodes[i].parent;
        for (size_t j = 0; j < p->n_unmerged; j++) {
            if (p->unmerged_leaves[j] >= leaves ||
                !spk_mls_tm_in_subtree(2 * p->unmerged_leaves[j], (uint32_t)i)) {
                rc = SPK_EDECODE;
                break;
            }
        }
    }
    spk_mls_node_t *full = NULL;
    if (rc == 0) {
        full = realloc(nodes, spk_mls_tm_node_width(leaves) * sizeof(spk_mls_node_t));
        if (full == NULL) {
            rc = SPK_ENOMEM;
        }
    }
    if (rc != 0) {
        spk_mls_vec_free(nodes, n, sizeof(spk_mls_node_t), node_fr_);
        return spk_mls_reader_fail(r, rc);
    }
    memset(full + n, 0, (spk_mls_tm_node_width(leaves) - n) * sizeof(spk_mls_node_t));
    out->nodes = full;
    out->n_leaves = leaves;
    return 0;
}

int spk_mls_tree_write(spk_mls_writer_t *w, const spk_mls_tree_t *t)
{
    size_t mark;
    uint32_t width = spk_mls_tm_node_width(t->n_leaves);
    uint32_t last = width;
    while (last > 0 && t->nodes[last - 1].type == SPK_MLS_NODE_BLANK) {
        last--;
    }
    spk_mls_write_vec_begin(w, &mark);
    for (uint32_t i = 0; i < last; i++) {
        bool present = t->nodes[i].type != SPK_MLS_NODE_BLANK;
        spk_mls_write_optional(w, present);
        if (present) {
            spk_mls_node_write(w, &t->nodes[i]);
        }
    }
    spk_mls_write_vec_end(w, mark);
    return w->err;
}

int spk_mls_tree_decode(spk_mls_tree_t *out, const uint8_t *p, size_t n)
{
    spk_mls_reader_t r;
    spk_mls_reader_init(&r, p, n);
    int rc = spk_mls_tree_read(&r, out);
    if (rc == 0) {
        rc = spk_mls_reader_done(&r);
        if (rc != 0) {
            spk_mls_tree_free(out);
        }
    }
    return rc;
}

int spk_mls_tree_encode(const spk_mls_tree_t *t, spk_mls_bytes_t *out)
{
    spk_mls_writer_t w;
    spk_mls_writer_init(&w);
    memset(out, 0, sizeof(*out));
    (void)spk_mls_tree_write(&w, t);
    return spk_mls_writer_take(&w, out);
}

void spk_mls_tree_free(spk_mls_tree_t *t)
{
    spk_mls_vec_free(t->nodes, spk_mls_tm_node_width(t->n_leaves), sizeof(spk_mls_node_t),
                     node_fr_);
    t->nodes = NULL;
    t->n_leaves = 0;
}

int spk_mls_tree_copy(spk_mls_tree_t *dst, const spk_mls_tree_t *src)
{
    uint32_t width = spk_mls_tm_node_width(src->n_leaves);
    memset(dst, 0, sizeof(*dst));
    if (width == 0) {
        return 0;
    }
    spk_mls_node_t *nodes = calloc(width, sizeof(spk_mls_node_t));
    if (nodes == NULL) {
        return SPK_ENOMEM;
    }
    for (uint32_t i = 0; i < width; i++) {
        int rc = spk_mls_node_copy(&nodes[i], &src->nodes[i]);
        if (rc != 0) {
            spk_mls_vec_free(nodes, i, sizeof(spk_mls_node_t), node_fr_);
            return rc;
        }
    }
    dst->nodes = nodes;
    dst->n_leaves = src->n_leaves;
    return 0;
}

const spk_mls_leaf_node_t *spk_mls_tree_leaf(const spk_mls_tree_t *t, uint32_t l)
{
    if (l >= t->n_leaves || t->nodes[2 * (size_t)l].type != SPK_MLS_NODE_LEAF) {
        return NULL;
    }
    return &t->nodes[2 * (size_t)l].leaf;
}

/* ---- modifications ---- */

void spk_mls_tree_blank(spk_mls_tree_t *t, uint32_t x)
{
    spk_mls_node_free(&t->nodes[x]);
}

int spk_mls_tree_extend(spk_mls_tree_t *t)
{
    uint32_t old_w = spk_mls_tm_node_width(t->n_leaves);
    if (t->n_leaves >= (SPK_MLS_MAX_TREE_NODES + 1) / 2) {
        return SPK_ERANGE;
    }
    uint32_t new_w = spk_mls_tm_node_width(t->n_leaves * 2);
    spk_mls_node_t *nodes = realloc(t->nodes, new_w * sizeof(spk_mls_node_t));
    if (nodes == NULL) {
        return SPK_ENOMEM;
    }
    memset(nodes + old_w, 0, (new_w - old_w) * sizeof(spk_mls_node_t));
    t->nodes = nodes;
    t->n_leaves *= 2;
    return 0;
}

int spk_mls_tree_truncate(spk_mls_tree_t *t)
{
    while (t->n_leaves > 1) {
        uint32_t half_w = spk_mls_tm_node_width(t->n_leaves / 2);
        uint32_t w = spk_mls_tm_node_width(t->n_leaves);
        bool right_blank = true;
        for (uint32_t i = half_w + 1; i < w; i++) {
            if (t->nodes[i].type != SPK_MLS_NODE_BLANK) {
                right_blank = false;
                break;
            }
        }
        if (!right_blank) {
            break;
        }
        spk_mls_tree_blank(t, half_w); /* the old root */
        spk_mls_node_t *nodes = realloc(t->nodes, half_w * sizeof(spk_mls_node_t));
        if (nodes != NULL) {
            t->nodes = nodes;
        }
        t->n_leaves /= 2;
    }
    return 0;
}

/* Appends leaf index l to the unmerged list of parent node x (pre-allocated by the caller). */
static void add_unmerged(spk_mls_parent_node_t *p, uint32_t *grown, uint32_t l)
{
    grown[p->n_unmerged] = l;
    p->unmerged_leaves = grown;
    p->n_unmerged++;
}

int spk_mls_tree_add(spk_mls_tree_t *t, const spk_mls_leaf_node_t *leaf, uint32_t *leaf_out)
{
    uint32_t l = 0;
    while (l < t->n_leaves && t->nodes[2 * (size_t)l].type != SPK_MLS_NODE_BLANK) {
        l++;
    }
    spk_mls_leaf_node_t copy;
    int rc = spk_mls_leaf_node_copy(&copy, leaf);
    if (rc != 0) {
        return rc;
    }
    bool extended = false;
    if (l == t->n_leaves) {
        if ((rc = spk_mls_tree_extend(t)) != 0) {
            spk_mls_leaf_node_free(&copy);
            return rc;
        }
        extended = true;
    }
    uint32_t path[SPK_MLS_TM_MAX_DEPTH];
    uint32_t *grown[SPK_MLS_TM_MAX_DEPTH] = {0};
    size_t np = tm_direct_path(2 * l, t->n_leaves, path);
    /* Allocate first so that the tree is only touched once nothing can fail. */
    for (size_t i = 0; i < np; i++) {
        spk_mls_parent_node_t *p = &t->nodes[path[i]].parent;
        if (t->nodes[path[i]].type != SPK_MLS_NODE_PARENT) {
            continue;
        }
        grown[i] = malloc((p->n_unmerged + 1) * sizeof(uint32_t));
        if (grown[i] == NULL) {
            for (size_t j = 0; j < i; j++) {
                free(grown[j]);
            }
            spk_mls_leaf_node_free(&copy);
            if (extended) {
                spk_mls_tree_truncate(t); /* the new right half is all blank */
            }
            return SPK_ENOMEM;
        }
        if (p->n_unmerged > 0) {
            memcpy(grown[i], p->unmerged_leaves, p->n_unmerged * sizeof(uint32_t));
        }
    }
    for (size_t i = 0; i < np; i++) {
        if (grown[i] != NULL) {
            spk_mls_parent_node_t *p = &t->nodes[path[i]].parent;
            free(p->unmerged_leaves);
            add_unmerged(p, grown[i], l);
        }
    }
    t->nodes[2 * (size_t)l].type = SPK_MLS_NODE_LEAF;
    t->nodes[2 * (size_t)l].leaf = copy;
    *leaf_out = l;
    return 0;
}

int spk_mls_tree_update(spk_mls_tree_t *t, uint32_t l, const spk_mls_leaf_node_t *leaf)
{
    if (spk_mls_tree_leaf(t, l) == NULL) {
        return SPK_EINVAL;
    }
    spk_mls_leaf_node_t copy;
    int rc = spk_mls_leaf_node_copy(&copy, leaf);
    if (rc != 0) {
        return rc;
    }
    uint32_t path[SPK_MLS_TM_MAX_DEPTH];
    size_t np = tm_direct_path(2 * l, t->n_leaves, path);
    for (size_t i = 0; i < np; i++) {
        spk_mls_tree_blank(t, path[i]);
    }
    spk_mls_tree_blank(t, 2 * l);
    t->nodes[2 * (size_t)l].type = SPK_MLS_NODE_LEAF;
    t->nodes[2 * (size_t)l].leaf = copy;
    return 0;
}

int spk_mls_tree_remove(spk_mls_tree_t *t, uint32_t l)
{
    if (spk_mls_tree_leaf(t, l) == NULL) {
        return SPK_EINVAL;
    }
    uint32_t path[SPK_MLS_TM_MAX_DEPTH];
    size_t np = tm_direct_path(2 * l, t->n_leaves, path);
    for (size_t i = 0; i < np; i++) {
        spk_mls_tree_blank(t, path[i]);
    }
    spk_mls_tree_blank(t, 2 * l);
    return spk_mls_tree_truncate(t);
}

/* lenet-edge cycle estimator: a QEMU 7.2 TCG plugin (plugin API version 1).
 *
 * Counts every executed Thumb instruction by class and adds its cost from a per-core
 * timing table taken from the Cortex-M Technical Reference Manuals (see CORES below).
 * Model: zero wait states, no caches, single issue, in order; a load or store right after
 * another one pipelines (one cycle less); a taken branch adds the pipeline refill (taken
 * = the next block does not start at the branch's fall-through address); LDM/STM/PUSH/POP
 * cost 1 + registers; an MVE (Helium) instruction on the dual-beat M55 takes 2 cycles,
 * 1 when it overlaps the previous one of the other kind (memory vs compute).
 *
 * Arguments: core=m0|m3|m4|m7|m33|m55, out=FILE, and up to 8 mark=HEXADDR: each time a
 * translation block starting at a mark runs, "MARK addr instructions cycles" is appended
 * to FILE (the totals before that block), so the host can take differences between
 * function entries. Built at bench time with gcc; Debian ships no qemu-plugin.h, so the
 * few API functions used are declared here, as QEMU 7.2's header declares them.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- QEMU 7.2 plugin API (include/qemu/qemu-plugin.h), the part this plugin uses ---- */
typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))
QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;

/* ---- timing tables ------------------------------------------------------------------ */
struct core {
    const char *name;
    int mul, mla, dsp_mac, mull, mlal, div; /* MUL; MLA/MLS; SMLAD & co; SMULL; SMLAL; SDIV */
    int load, store, paired;  /* LDR, STR alone; either right after a load/store */
    int ldrd;                 /* LDRD/STRD */
    int refill;               /* added when a branch is taken */
    int mve, mve_overlap;     /* a Helium instruction; when it overlaps the previous one */
};

/* M0 (DDI 0432C table 3-1): loads/stores 2, no pipelining, B taken 3, MULS 1 (fast
 * multiplier, as on the nRF51). M3 (DDI 0337, 18.2) / M4 (DDI 0439, 3.3.1): LDR 2, STR 1,
 * neighbouring loads/stores pipeline to 1, LDRD 3, MLA 2, SMULL/SMLAL 3-5 / 4-7 on the M3,
 * 1 on the M4, SDIV 2-12 (7 taken), taken branch 1 + P with P = 1-3 (2 taken). M7 single
 * issue (it can dual issue: this over-estimates it), loads 1, a predicted taken branch
 * +1. M33: its TRM gives no table; the M4's figures. M55 (DDI 0553): scalar as the M7,
 * Helium dual-beat: a 4-beat vector instruction 2 cycles, overlapping the next one of
 * the other kind. On the cores without Helium the coprocessor space is the FPU (unused by
 * the int8 inference): 1 cycle. */
static const struct core CORES[] = {
    /* name  mul mla dsp mull mlal div load store paired ldrd refill mve ovl */
    {"m0",   1,  1,  1,  1,   1,   1,  2,   2,    2,     3,   2,     1,  1},
    {"m3",   1,  2,  1,  4,   5,   7,  2,   1,    1,     3,   2,     1,  1},
    {"m4",   1,  2,  1,  1,   1,   7,  2,   1,    1,     3,   2,     1,  1},
    {"m7",   1,  1,  1,  1,   1,   7,  1,   1,    1,     2,   1,     1,  1},
    {"m33",  1,  2,  1,  1,   1,   7,  2,   1,    1,     3,   2,     1,  1},
    {"m55",  1,  1,  1,  1,   1,   7,  1,   1,    1,     2,   2,     2,  1},
};
static const struct core *core = &CORES[2];

enum kind { ALU, MUL, MLA, DSP_MAC, MULL, MLAL, DIV, LOAD, STORE, LDRD, MULTI, BRANCH,
            MVE_MEM, MVE_OP, NKINDS };
static const char *KIND_NAMES[NKINDS] = {"alu", "mul", "mla", "dsp_mac", "mull", "mlal", "div",
    "load", "store", "ldrd", "ldm_stm", "branch", "mve_mem", "mve_op"};

struct decoded {
    enum kind kind;
    int regs;     /* LDM/STM/PUSH/POP register count */
    int branch;   /* may change the PC (ends the block) */
    int refill;   /* a branch that always refills, even into the next address (BX, POP pc) */
};

static int popcount16(unsigned v) { return __builtin_popcount(v & 0xFFFFu); }

static struct decoded decode(const uint8_t *p, size_t size)
{
    struct decoded d = {ALU, 0, 0, 0};
    const unsigned hw = (unsigned)p[0] | ((unsigned)p[1] << 8);
    if (size == 2) {
        if ((hw & 0xFF00) == 0x4700) { d.kind = BRANCH; d.branch = d.refill = 1; }        /* BX, BLX */
        else if ((hw & 0xFC00) == 0x4400 && (hw & 0x0087) == 0x0087 && (hw & 0x0300) != 0x0100)
            { d.branch = d.refill = 1; }                                                  /* MOV/ADD pc */
        else if ((hw & 0xF800) == 0x4800 || (hw & 0xF000) == 0x5000 || (hw & 0xE000) == 0x6000 ||
                 (hw & 0xE000) == 0x8000) {  /* LDR literal, register, immediate, SP-relative */
            int load = (hw & 0xF800) == 0x4800 ||
                       ((hw & 0xF000) == 0x5000 ? (hw & 0x0E00) >= 0x0600 : (hw & 0x0800) != 0);
            d.kind = load ? LOAD : STORE;
        }
        else if ((hw & 0xFE00) == 0xB400) { d.kind = MULTI; d.regs = popcount16(hw & 0x1FF); }  /* PUSH */
        else if ((hw & 0xFE00) == 0xBC00) {                                                 /* POP */
            d.kind = MULTI; d.regs = popcount16(hw & 0x1FF);
            if (hw & 0x100) d.branch = d.refill = 1;
        }
        else if ((hw & 0xF000) == 0xC000) { d.kind = MULTI; d.regs = popcount16(hw & 0xFF); }   /* LDM/STM */
        else if ((hw & 0xF000) == 0xD000 && (hw & 0x0E00) != 0x0E00) { d.kind = BRANCH; d.branch = 1; }
        else if ((hw & 0xF800) == 0xE000) { d.kind = BRANCH; d.branch = 1; }                 /* B */
        else if ((hw & 0xF500) == 0xB100) { d.kind = BRANCH; d.branch = 1; }                 /* CBZ/CBNZ */
        else if ((hw & 0xFFC0) == 0x4340) d.kind = MUL;                                      /* MULS */
        return d;
    }
    const unsigned hw2 = (unsigned)p[2] | ((unsigned)p[3] << 8);
    if ((hw & 0xEC00) == 0xEC00) {  /* coprocessor space: FP, MVE (Helium) */
        d.kind = (hw & 0xEE00) == 0xEC00 ? MVE_MEM : MVE_OP;
        return d;
    }
    if ((hw & 0xFE40) == 0xE800) {  /* LDM/STM (.W) */
        d.kind = MULTI; d.regs = popcount16(hw2);
        if ((hw & 0x0010) && (hw2 & 0x8000)) d.branch = d.refill = 1;
    } else if ((hw & 0xFE40) == 0xE840) {
        if ((hw & 0xFFF0) == 0xE8D0 && (hw2 & 0xFFE0) == 0xF000) {  /* TBB/TBH */
            d.kind = LOAD; d.branch = d.refill = 1;
        } else if ((hw & 0xFFE0) == 0xE840 || (hw & 0xFFE0) == 0xE8C0) {
            d.kind = (hw & 0x0010) ? LOAD : STORE;  /* exclusives */
        } else {
            d.kind = LDRD;
        }
    } else if ((hw & 0xF800) == 0xF000 && (hw2 & 0x8000)) {  /* branches, misc control */
        if ((hw2 & 0x5000) || (hw & 0x0380) != 0x0380) {
            d.kind = BRANCH; d.branch = 1;
            if ((hw2 & 0x5000) == 0x4000) d.refill = 1; /* BL, BLX */
            /* Armv8.1-M low-overhead loops (LE, WLS, DLS): the M55's loop cache makes LE free */
            if ((hw & 0xFFD0) == 0xF000 && (hw & 0x000F) == 0x000F && (hw2 & 0xD001) == 0xC001) {
                d.kind = ALU; d.branch = d.refill = 0;
            }
        }
    } else if ((hw & 0xFE00) == 0xF800) {  /* load/store single */
        d.kind = (hw & 0x0010) ? LOAD : STORE;
        if ((hw & 0x0010) && (hw2 & 0xF000) == 0xF000 && (hw & 0x0060) == 0x0040) d.branch = d.refill = 1;
    } else if ((hw & 0xFF80) == 0xFB00) {  /* multiply, MAC, DSP MAC */
        const unsigned op1 = (hw >> 4) & 7, ra = hw2 >> 12;
        if (op1 == 0) d.kind = ra == 0xF ? MUL : MLA;
        else d.kind = DSP_MAC;
    } else if ((hw & 0xFF80) == 0xFB80) {  /* long multiply, divide */
        const unsigned op1 = (hw >> 4) & 7;
        d.kind = (op1 == 1 || op1 == 3) ? DIV : (op1 == 0 || op1 == 2) ? MULL : MLAL;
    }
    return d;
}

static int base_cost(const struct decoded *d, enum kind prev)
{
    const int after_mem = prev == LOAD || prev == STORE;
    switch (d->kind) {
    case MUL: return core->mul;
    case MLA: return core->mla;
    case DSP_MAC: return core->dsp_mac;
    case MULL: return core->mull;
    case MLAL: return core->mlal;
    case DIV: return core->div;
    case LOAD: return after_mem ? core->paired : core->load;
    case STORE: return after_mem ? core->paired : core->store;
    case LDRD: return core->ldrd;
    case MULTI: return 1 + d->regs;
    case MVE_MEM: return prev == MVE_OP ? core->mve_overlap : core->mve;
    case MVE_OP: return prev == MVE_MEM ? core->mve_overlap : core->mve;
    default: return 1;
    }
}

/* ---- per translation block ------------------------------------------------------------ */
struct block {
    uint64_t start, fallthrough;
    uint32_t insns, cycles;
    int ends_in_branch, always_refills, mark;
    uint32_t kinds[NKINDS];
};

static uint64_t total_insns, total_cycles, kind_insns[NKINDS];
static const struct block *previous;
static uint64_t marks[8];
static int n_marks;
static FILE *out;

static void exec_block(unsigned int vcpu, void *udata)
{
    const struct block *b = udata;
    (void)vcpu;
    if (previous && previous->ends_in_branch &&
        (previous->always_refills || b->start != previous->fallthrough)) {
        total_cycles += (uint64_t)core->refill;
    }
    if (b->mark && out) {
        fprintf(out, "MARK %llx %llu %llu\n", (unsigned long long)b->start,
                (unsigned long long)total_insns, (unsigned long long)total_cycles);
        fflush(out);
    }
    total_insns += b->insns;
    total_cycles += b->cycles;
    for (int k = 0; k < NKINDS; ++k) kind_insns[k] += b->kinds[k];
    previous = b;
}

static void translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    struct block *b = calloc(1, sizeof *b);
    if (b == NULL) return;
    const size_t n = qemu_plugin_tb_n_insns(tb);
    enum kind prev = ALU;
    b->start = qemu_plugin_tb_vaddr(tb);
    for (size_t i = 0; i < n; ++i) {
        const struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        const size_t size = qemu_plugin_insn_size(insn);
        const struct decoded d = decode(qemu_plugin_insn_data(insn), size);
        b->cycles += (uint32_t)base_cost(&d, prev);
        b->kinds[d.kind]++;
        prev = d.kind;
        if (i + 1 == n) {
            b->fallthrough = qemu_plugin_insn_vaddr(insn) + size;
            b->ends_in_branch = d.branch;
            b->always_refills = d.refill;
        }
    }
    b->insns = (uint32_t)n;
    for (int m = 0; m < n_marks; ++m) b->mark |= marks[m] == b->start;
    qemu_plugin_register_vcpu_tb_exec_cb(tb, exec_block, QEMU_PLUGIN_CB_NO_REGS, b);
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
    (void)id;
    (void)udata;
    if (out == NULL) return;
    fprintf(out, "TOTAL %llu %llu\n", (unsigned long long)total_insns, (unsigned long long)total_cycles);
    for (int k = 0; k < NKINDS; ++k)
        fprintf(out, "KIND %s %llu\n", KIND_NAMES[k], (unsigned long long)kind_insns[k]);
    fclose(out);
    out = NULL;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const void *info, int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; ++i) {
        const char *a = argv[i];
        if (strncmp(a, "core=", 5) == 0) {
            core = NULL;
            for (size_t c = 0; c < sizeof CORES / sizeof CORES[0]; ++c)
                if (strcmp(a + 5, CORES[c].name) == 0) core = &CORES[c];
            if (core == NULL) { fprintf(stderr, "cycles plugin: unknown %s\n", a); return -1; }
        } else if (strncmp(a, "out=", 4) == 0) {
            out = fopen(a + 4, "w");
            if (out == NULL) { fprintf(stderr, "cycles plugin: cannot write %s\n", a + 4); return -1; }
        } else if (strncmp(a, "mark=", 5) == 0 && n_marks < 8) {
            marks[n_marks++] = strtoull(a + 5, NULL, 16) & ~1ull;
        } else {
            fprintf(stderr, "cycles plugin: unknown argument %s\n", a);
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, translate);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}

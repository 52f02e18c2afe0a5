// mimi_rvq_common.wgsl — what mimi_rvq_score.wgsl and mimi_rvq_pick.wgsl
// share (spliced at `//! MIMI_RVQ_COMMON`): the level uniform, the
// workgroup shape and the pipeline constants.

struct RvqLevel {
    level: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const WG: u32 = 256u;
const ROWS: u32 = 32u;

override DIM: u32;
override BINS: u32;
override N_Q: u32;
override ROW: u32;

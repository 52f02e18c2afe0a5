//! The mat-vec op (`kernels/matvec.wgsl`) in one place, for the step engine
//! and the candle ops alike: its specialisation key and override constants,
//! the lane policy, one pipeline cache, and weight upload.
//!
//! A projection is `y = W · in(x)` with in(x) one of the input modes
//! ([`MatvecInput`]) and the rows written as [`MatvecOutput`] says.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::device::{Capabilities, Gpu};
use crate::error::{GpuError, Result};
use crate::kernels::{self, GpuFormat, ShaderFeatures, MATVEC_WORKGROUP};
use crate::pipelines::{bind_group, bind_layout, pipeline, shader, RO, RW};
use crate::repack::PackedMatrix;

/// moshi's RmsNorm epsilon (the `EPS` default of matvec.wgsl).
pub const RMS_NORM_EPS: f32 = 1e-8;

/// The matvec lanes per row unless asked otherwise, except on discrete
/// GPUs ([`DISCRETE_LANES`]). Measured on an H100 (full-size Q4_K step,
/// before the vec4 input tile, bench/README.md): 8 lanes 3.05 ms, 16 lanes
/// 3.12, 32 lanes 4.83 (4× the workgroups, each paying the norm/input
/// prologue, no longer fit in one wave); lavapipe also prefers 8.
pub const DEFAULT_LANES: u32 = 8;
/// The most lanes per row on a discrete GPU whose subgroups allow it.
/// Measured on an H200 in one run (full-size Q4_K step at a full cache,
/// bench/h200/session6): 8 lanes for all 1.58 ms, 16 lanes 1.31, 32 lanes
/// 1.31 — the 2048-row projections get 256 workgroups instead of 64.
pub const DISCRETE_LANES: u32 = 32;

/// matvec.wgsl's bindings: weights, scales, x, alpha (read) and y (read_write).
const BINDINGS: [wgpu::BufferBindingType; 5] = [RO, RO, RO, RO, RW];

/// `INPUT_MODE` of matvec.wgsl.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatvecInput {
    Plain = 0,
    RmsNorm = 1,
    /// silu(x₁)·x₂ of a 2K-wide input. The engine applies moshi's gate on
    /// linear_in's output instead (`MatvecOutput::Gated`); the candle ops
    /// still offer this mode.
    SiluGate = 2,
    /// Merges attention.wgsl's per-split partial results.
    AttentionMerge = 3,
}

/// Where a projection's rows go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatvecOutput {
    /// y[offset + r] = row r.
    Set(u32),
    /// y[r] += row r (residual).
    Add,
    /// y[p] = silu(row p) · row (p + rows/2) (moshi's gated MLP).
    Gated,
}

/// Which specialisation of matvec.wgsl a projection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MatvecKey {
    pub format: GpuFormat,
    pub k: u32,
    pub rows: u32,
    pub input: MatvecInput,
    pub residual: bool,
    pub y_offset: u32,
    /// `AttentionMerge` only (else 1): the attention layout.
    pub head_dim: u32,
    pub splits: u32,
    /// Write silu(row p)·(row p + rows/2) for p < rows/2 (GATED_OUT).
    pub gated_output: bool,
    /// Lanes per row: 8, 16 or 32 (`LANES`).
    pub lanes: u32,
    /// Where each stream of a batch finds its slices (all 0: one stream).
    pub strides: StreamStrides,
    /// matvec_batch.wgsl (four streams per workgroup) instead of
    /// matvec.wgsl (one).
    pub batch: bool,
    /// Rows each invocation computes (`ROWS_PER_INVOCATION`: 2 or 4 in
    /// matvec_batch.wgsl; 1 in matvec.wgsl).
    pub rows_per_invocation: u32,
}

/// Distances between consecutive streams' slices of a batched matvec's
/// buffers (`X_STRIDE4`, `ALPHA_STRIDE4`, `Y_STRIDE`); stream b is
/// workgroup_id.z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct StreamStrides {
    /// In vec4s of x.
    pub x4: u32,
    /// In vec4s of alpha (the attention partials' (m, l); norm weights are
    /// shared: 0).
    pub alpha4: u32,
    /// In f32s of y.
    pub y: u32,
}

impl MatvecKey {
    /// The key for `weights` read through `input` and written as `output`;
    /// `attention` = (head dim, splits) for `AttentionMerge`.
    pub fn new(
        weights: &MatvecWeights,
        input: MatvecInput,
        output: MatvecOutput,
        attention: (u32, u32),
        lanes: u32,
    ) -> Self {
        let (residual, y_offset) = match output {
            MatvecOutput::Set(offset) => (false, offset),
            MatvecOutput::Add => (true, 0),
            MatvecOutput::Gated => (false, 0),
        };
        let (head_dim, splits) = if input == MatvecInput::AttentionMerge {
            attention
        } else {
            (1, 1)
        };
        Self {
            format: weights.format,
            k: weights.cols as u32,
            rows: weights.rows as u32,
            input,
            residual,
            y_offset,
            head_dim,
            splits,
            gated_output: output == MatvecOutput::Gated,
            lanes,
            strides: StreamStrides::default(),
            batch: false,
            rows_per_invocation: 1,
        }
    }

    /// The same projection over a batch of streams laid out by `strides`,
    /// in `groups` groups of four streams per workgroup (matvec_batch.wgsl)
    /// when `Some`.
    pub fn with_strides(self, strides: StreamStrides, groups: Option<u32>) -> Self {
        // The batched kernel reads plain or RmsNorm inputs only (the engine
        // merges attention on its own for batches).
        debug_assert!(
            groups.is_none() || matches!(self.input, MatvecInput::Plain | MatvecInput::RmsNorm),
            "{:?} in the batched matvec",
            self.input
        );
        let mut key = Self {
            strides,
            batch: groups.is_some(),
            ..self
        };
        if let Some(groups) = groups {
            // Four rows per invocation (each input vec4 read from workgroup
            // memory serves four rows) unless that leaves fewer than
            // LANES_MIN_WORKGROUPS workgroups over all stream groups; then
            // two. H100, full-size step (bench/README.md, session 13): B = 8
            // 3.26 → 2.74 ms with two rows; B = 16 4.68 → 4.78 and B = 64
            // 15.3 → 17.1 ms with two rows everywhere; one row slower still.
            key.rows_per_invocation = kernels::MATVEC_BATCH_ROWS_PER_INVOCATION;
            if key.workgroups() * groups < LANES_MIN_WORKGROUPS {
                key.rows_per_invocation /= 2;
            }
        }
        key
    }

    /// Streams one workgroup computes.
    pub fn streams_per_workgroup(&self) -> u32 {
        if self.batch {
            kernels::MATVEC_BATCH_STREAMS as u32
        } else {
            1
        }
    }

    /// Workgroups of one dispatch (per group of streams along z).
    pub fn workgroups(&self) -> u32 {
        let rows_per_workgroup = MATVEC_WORKGROUP / self.lanes * self.rows_per_invocation;
        if self.gated_output {
            (self.rows / 2).div_ceil(rows_per_workgroup / 2)
        } else {
            self.rows.div_ceil(rows_per_workgroup)
        }
    }

    /// matvec.wgsl's override constants for this key.
    fn constants(&self, eps: f32) -> Vec<(&'static str, f64)> {
        let mut constants = vec![
            ("K", self.k as f64),
            ("ROWS", self.rows as f64),
            ("INPUT_MODE", self.input as u32 as f64),
            ("RESIDUAL", if self.residual { 1.0 } else { 0.0 }),
            ("Y_OFFSET", self.y_offset as f64),
            ("EPS", eps as f64),
            ("HEAD_DIM", self.head_dim as f64),
            ("SPLITS", self.splits as f64),
            ("GATED_OUT", if self.gated_output { 1.0 } else { 0.0 }),
            ("LANES", self.lanes as f64),
            ("X_STRIDE4", self.strides.x4 as f64),
            ("ALPHA_STRIDE4", self.strides.alpha4 as f64),
            ("Y_STRIDE", self.strides.y as f64),
        ];
        if self.batch {
            constants.push(("ROWS_PER_INVOCATION", self.rows_per_invocation as f64));
        }
        constants
    }
}

/// How many lanes each projection's rows get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lanes {
    /// The same for every projection.
    Fixed(u32),
    /// Per projection, the fewest lanes (8, 16, 32, at most `max`) that
    /// still give [`LANES_MIN_WORKGROUPS`] workgroups: long projections
    /// keep 8 lanes, short ones spread over more workgroups.
    ByRows { max: u32 },
}

/// The workgroups a projection should have before it takes fewer lanes
/// (about two per compute unit of a large GPU: an H200 has 132). Measured
/// on the H200 (µs per step, 8 → 32 lanes for all): linear_in (11264 rows)
/// 357 → 417, out_proj (2048) 366 → 286, linear_out (2048) 507 → 268,
/// in_proj (6144) 305 → 287.
pub const LANES_MIN_WORKGROUPS: u32 = 256;

impl Lanes {
    /// Lanes per row for a projection of `rows` rows.
    pub fn for_rows(self, rows: usize) -> u32 {
        match self {
            Lanes::Fixed(l) => l,
            Lanes::ByRows { max } => [8, 16, 32]
                .into_iter()
                .filter(|&l| l <= max)
                .find(|&l| (rows as u32).div_ceil(MATVEC_WORKGROUP / l) >= LANES_MIN_WORKGROUPS)
                .unwrap_or(max),
        }
    }
}

/// Lanes per row: `requested` for every projection if the kernel and the
/// adapter's subgroups allow it; unasked, per projection
/// ([`Lanes::ByRows`], up to [`DISCRETE_LANES`]) on a discrete GPU whose
/// subgroups allow it, else [`DEFAULT_LANES`].
pub fn lanes(caps: &Capabilities, requested: Option<u32>) -> Result<Lanes> {
    let subgroup = caps.subgroups.then_some(caps.subgroup_size);
    match requested {
        None if caps.discrete && subgroup.is_none_or(|s| DISCRETE_LANES <= s) => {
            Ok(Lanes::ByRows {
                max: DISCRETE_LANES,
            })
        }
        None => Ok(Lanes::Fixed(DEFAULT_LANES)),
        Some(l) if [8, 16, 32].contains(&l) && subgroup.is_none_or(|s| l <= s) => {
            Ok(Lanes::Fixed(l))
        }
        Some(l) => Err(GpuError::Unsupported(format!(
            "{l} matvec lanes (8, 16 or 32, at most the subgroup size {})",
            caps.subgroup_size
        ))),
    }
}

/// A matrix uploaded in its GPU layout.
pub struct MatvecWeights {
    pub name: String,
    pub format: GpuFormat,
    pub rows: usize,
    pub cols: usize,
    data: wgpu::Buffer,
    /// Q8 and Q4 only.
    scales: Option<wgpu::Buffer>,
}

impl MatvecWeights {
    /// Uploads `m`, dropping its host copy.
    pub fn upload(gpu: &Gpu, m: PackedMatrix) -> Result<Self> {
        let data = gpu.buffer_with(&m.name, &m.data, wgpu::BufferUsages::STORAGE)?;
        let scales = match m.format {
            GpuFormat::F32 | GpuFormat::F16 => None,
            GpuFormat::Q8 | GpuFormat::Q4 => Some(gpu.buffer_with(
                &format!("{}.scales", m.name),
                &m.scales,
                wgpu::BufferUsages::STORAGE,
            )?),
        };
        Ok(Self {
            name: m.name,
            format: m.format,
            rows: m.rows,
            cols: m.cols,
            data,
            scales,
        })
    }

    /// Bytes the kernel reads per application.
    pub fn bytes(&self) -> u64 {
        self.data.size() + self.scales.as_ref().map_or(0, |s| s.size())
    }
}

/// Shader modules (one per weight format) and pipelines (one per key and
/// epsilon) built on one device, with the bind layout they share.
pub struct MatvecPipelines {
    features: ShaderFeatures,
    pub lanes: u32,
    layout: wgpu::BindGroupLayout,
    /// Bound where a mode reads no scales or alpha.
    dummy: wgpu::Buffer,
    /// Per weight format and kernel (single, batch).
    modules: Mutex<HashMap<(GpuFormat, bool), wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<(MatvecKey, u32), Arc<wgpu::ComputePipeline>>>,
}

impl MatvecPipelines {
    pub fn new(gpu: &Gpu, lanes: u32) -> Result<Self> {
        Ok(Self {
            features: ShaderFeatures {
                f16: gpu.caps.shader_f16,
                subgroups: gpu.caps.subgroups,
            },
            lanes,
            layout: bind_layout(&gpu.device, "matvec", &BINDINGS),
            dummy: gpu.empty_buffer("matvec unused binding", 16, wgpu::BufferUsages::STORAGE)?,
            modules: Mutex::new(HashMap::new()),
            pipelines: Mutex::new(HashMap::new()),
        })
    }

    /// The pipeline for `key` (built on first use).
    pub fn get(&self, gpu: &Gpu, key: MatvecKey, eps: f32) -> Arc<wgpu::ComputePipeline> {
        // A poisoned lock only means another thread panicked mid-insert;
        // the maps stay valid.
        let mut pipelines = self.pipelines.lock().unwrap_or_else(|e| e.into_inner());
        pipelines
            .entry((key, eps.to_bits()))
            .or_insert_with(|| {
                let mut modules = self.modules.lock().unwrap_or_else(|e| e.into_inner());
                let module = modules.entry((key.format, key.batch)).or_insert_with(|| {
                    let source = if key.batch {
                        kernels::matvec_batch_source(key.format, self.features)
                    } else {
                        kernels::matvec_source(key.format, self.features)
                    };
                    shader(gpu, "matvec", &source)
                });
                Arc::new(pipeline(
                    gpu,
                    &format!("matvec {key:?}"),
                    &self.layout,
                    module,
                    &key.constants(eps),
                ))
            })
            .clone()
    }

    /// Binds `weights`, the input `x` (and `alpha`: norm weights or
    /// attention's partial max/sum) and the output `y`.
    pub fn bind(
        &self,
        gpu: &Gpu,
        weights: &MatvecWeights,
        x: &wgpu::Buffer,
        alpha: Option<&wgpu::Buffer>,
        y: &wgpu::Buffer,
    ) -> wgpu::BindGroup {
        bind_group(
            &gpu.device,
            &weights.name,
            &self.layout,
            &[
                &weights.data,
                weights.scales.as_ref().unwrap_or(&self.dummy),
                x,
                alpha.unwrap_or(&self.dummy),
                y,
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Q4 projection of `rows` × 2048 at `lanes` lanes, as the engine
    /// keys it before batching.
    fn key(rows: u32, gated_output: bool, lanes: u32) -> MatvecKey {
        MatvecKey {
            format: GpuFormat::Q4,
            k: 2048,
            rows,
            input: MatvecInput::Plain,
            residual: false,
            y_offset: 0,
            head_dim: 1,
            splits: 1,
            gated_output,
            lanes,
            strides: StreamStrides::default(),
            batch: false,
            rows_per_invocation: 1,
        }
    }

    /// Four rows per invocation unless the grid over all stream groups
    /// would fall under LANES_MIN_WORKGROUPS; a lone stream keeps one.
    #[test]
    fn batch_rows_per_invocation_keep_the_grid_full() {
        let strides = StreamStrides::default();
        // stt-1b-en_fr: linear_in (gated, 11264 rows, 8 lanes), out_proj
        // (2048 rows, 32 lanes), in_proj (6144 rows, 16 lanes).
        let shapes = [
            key(11264, true, 8),
            key(2048, false, 32),
            key(6144, false, 16),
        ];
        let rows = |groups| shapes.map(|k| k.with_strides(strides, groups).rows_per_invocation);
        assert_eq!(rows(None), [1, 1, 1]);
        assert_eq!(rows(Some(1)), [2, 2, 2]); // B ≤ 4
                                              // B = 8: 2 × (88, 64, 96) workgroups at four rows; B = 16: 4 × that.
        assert_eq!(rows(Some(2)), [2, 2, 2]);
        assert_eq!(rows(Some(4)), [4, 4, 4]);
        assert_eq!(rows(Some(16)), [4, 4, 4]);
        let b8 = shapes.map(|k| k.with_strides(strides, Some(2)).workgroups());
        assert_eq!(b8, [176, 128, 192]);
        assert!(b8.iter().all(|w| w * 2 >= LANES_MIN_WORKGROUPS));
    }

    #[test]
    fn lanes_by_rows() {
        let l = Lanes::ByRows { max: 32 };
        // stt-1b-en_fr's projections: linear_in (gated, 11264 rows), the
        // text head (8000), in_proj (6144), out_proj and linear_out (2048),
        // the end-of-turn heads (24).
        let got: Vec<u32> = [11264, 8000, 6144, 2048, 24]
            .map(|r| l.for_rows(r))
            .to_vec();
        assert_eq!(got, [8, 16, 16, 32, 32]);
        assert_eq!(Lanes::ByRows { max: 16 }.for_rows(2048), 16);
        assert_eq!(Lanes::Fixed(8).for_rows(2048), 8);
    }
}

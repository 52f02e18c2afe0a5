//! Streaming causal convolutions on the GPU, chained through [`Signal`]
//! buffers that keep each conv's history between calls
//! (conv_history.wgsl), so one frame or many frames per call give the same
//! outputs. Each conv has two pipelines with the same summation order, one
//! for calls with few output columns and one for calls with many: for
//! SEANet convs conv1d.wgsl (a column per invocation) and
//! conv1d_tiled.wgsl (a tiled matrix product); for convs of a few columns
//! per frame (linears, downsampling, projections) conv1d_split.wgsl with a
//! small and a larger tile.

use stt_model::weights::safetensors::SafetensorsFile;

use super::record::Recorder;
use crate::device::Gpu;
use crate::error::{GpuError, Result};
use crate::kernels::{
    mimi_source, MimiKernel, CONV_SPLIT_MAX_PER_FRAME, CONV_SPLIT_TILES,
    CONV_SPLIT_WIDE_MIN_COLUMNS, CONV_TILED_MIN_COLUMNS, CONV_TILED_TILE, CONV_WORKGROUP,
};
use crate::pipelines::{bind_group, bind_layout, pipeline, shader, RO, RW, UNIFORM};

/// The per-call uniform both kernels read (`ConvParams`).
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ConvParams {
    pub frames: u32,
    /// Stream position of this call's first new column (transformer
    /// positions, 25 Hz).
    pub start: u32,
    /// 1 on a stream's first call: convs padding by replication
    /// (`PadMode::Replicate`) read their first new column for the history.
    pub first: u32,
    pub _pad: u32,
}

impl ConvParams {
    /// The uniform buffer the stages of one encoder share.
    pub fn buffer(gpu: &Gpu, label: &str) -> Result<wgpu::Buffer> {
        gpu.empty_buffer(
            label,
            std::mem::size_of::<Self>() as u64,
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        )
    }
}

/// A conv input (or any activation): `channels` rows of `history` columns
/// kept from the last call, then up to `max_frames · per_frame` new ones.
/// Zeros at creation, as moshi pads a stream's first call
/// (`PadMode::Constant`).
pub(crate) struct Signal {
    pub buffer: wgpu::Buffer,
    pub channels: u32,
    pub history: u32,
    /// New columns per 80 ms frame.
    pub per_frame: u32,
    /// Columns per row.
    pub row: u32,
}

impl Signal {
    pub fn new(
        gpu: &Gpu,
        name: &str,
        channels: usize,
        history: usize,
        per_frame: usize,
        max_frames: usize,
    ) -> Result<Self> {
        let row = history + per_frame * max_frames;
        use wgpu::BufferUsages as U;
        let buffer = gpu.empty_buffer(
            name,
            (4 * channels * row) as u64,
            U::STORAGE | U::COPY_SRC | U::COPY_DST,
        )?;
        Ok(Self {
            buffer,
            channels: channels as u32,
            history: history as u32,
            per_frame: per_frame as u32,
            row: row as u32,
        })
    }
}

/// What a conv applies to its inputs first.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Act {
    None = 0,
    /// ELU(1), before most SEANet convs.
    Elu = 1,
    /// GELU with erf, between the transformer MLP's two linears.
    GeluErf = 2,
}

impl Signal {
    /// Submits `enc` and reads back this call's `frames · per_frame` new
    /// columns, channel-major `[channels][columns]`.
    pub async fn submit_and_read_columns(
        &self,
        gpu: &Gpu,
        enc: wgpu::CommandEncoder,
        frames: usize,
        what: &str,
    ) -> Result<Vec<f32>> {
        let (row, history) = (self.row as usize, self.history as usize);
        let columns = frames * self.per_frame as usize;
        let bytes = (4 * self.channels as usize * row) as u64;
        let raw = gpu.submit_and_read(enc, &self.buffer, bytes, what).await?;
        let all: &[f32] = bytemuck::cast_slice(&raw);
        Ok(all
            .chunks_exact(row)
            .flat_map(|r| r[history..history + columns].iter().copied())
            .collect())
    }
}

/// One conv of the chain, as moshi's `StreamableConv1d` (or, with kernel
/// 1 and a 2-D weight, a `Linear`) holds it.
pub(crate) struct ConvSpec {
    /// Tensor names in the Mimi file.
    pub weight: String,
    pub bias: Option<String>,
    /// A per-output-channel scale (moshi `LayerScale`), before the residual.
    pub scale: Option<String>,
    pub kernel: usize,
    pub stride: usize,
    /// A 2-D `[out][in]` weight (a linear layer; kernel 1).
    pub linear: bool,
    pub act: Act,
    /// The stream's first history replicates its first column (moshi
    /// `PadMode::Replicate`) instead of zeros.
    pub replicate: bool,
}

impl ConvSpec {
    /// A SEANet conv: `{prefix}.weight`, `{prefix}.bias`.
    pub fn conv(prefix: &str, kernel: usize, stride: usize, act: Act) -> Self {
        Self {
            weight: format!("{prefix}.weight"),
            bias: Some(format!("{prefix}.bias")),
            scale: None,
            kernel,
            stride,
            linear: false,
            act,
            replicate: false,
        }
    }

    /// A linear layer without bias.
    pub fn linear(weight: String, act: Act, scale: Option<String>) -> Self {
        Self {
            weight,
            bias: None,
            scale,
            kernel: 1,
            stride: 1,
            linear: true,
            act,
            replicate: false,
        }
    }
}

/// A pipeline of a conv, with the output tile one workgroup covers.
struct Variant {
    pipeline: wgpu::ComputePipeline,
    /// (output columns, output channels) per workgroup.
    tile: (u32, u32),
    label: String,
}

pub(crate) struct Conv {
    /// For calls with fewer output columns than `wide_from`, and the rest.
    narrow: Variant,
    wide: Variant,
    wide_from: u32,
    bind_group: wgpu::BindGroup,
    c_out: u32,
    out_per_frame: u32,
    /// Kept for the bind group's lifetime.
    _weights: [wgpu::Buffer; 3],
}

fn f32_tensor(weights: &SafetensorsFile, name: &str, want: &[usize]) -> Result<Vec<f32>> {
    let t = weights.tensor(name, &candle_core::Device::Cpu)?;
    if t.dims() != want {
        return Err(GpuError::InvalidInput(format!(
            "{}: tensor {name} has shape {:?}, expected {want:?}",
            weights.file_name(),
            t.dims()
        )));
    }
    let t = t
        .flatten_all()
        .and_then(|t| t.to_dtype(candle_core::DType::F32));
    let v = t.and_then(|t| t.to_vec1::<f32>());
    v.map_err(|e| GpuError::InvalidInput(format!("{}: {name}: {e}", weights.file_name())))
}

impl Conv {
    /// Reads `input` (all its history and new columns), writes `output`
    /// after its history; `residual` is added at its history offset.
    pub fn new(
        gpu: &Gpu,
        weights: &SafetensorsFile,
        spec: &ConvSpec,
        params: &wgpu::Buffer,
        input: &Signal,
        output: &Signal,
        residual: Option<&Signal>,
    ) -> Result<Self> {
        let (c_in, c_out) = (input.channels as usize, output.channels as usize);
        let history = spec.kernel - spec.stride;
        if input.history as usize != history
            || input.per_frame as usize != output.per_frame as usize * spec.stride
        {
            return Err(GpuError::Unsupported(format!(
                "{}: the conv chain's geometry does not fit (history {} for kernel {} stride {})",
                spec.weight, input.history, spec.kernel, spec.stride
            )));
        }
        let shape: &[usize] = if spec.linear {
            &[c_out, c_in]
        } else {
            &[c_out, c_in, spec.kernel]
        };
        let weight = f32_tensor(weights, &spec.weight, shape)?;
        let bias = match &spec.bias {
            Some(name) => f32_tensor(weights, name, &[c_out])?,
            None => vec![0.0; c_out],
        };
        let scale = match &spec.scale {
            Some(name) => f32_tensor(weights, name, &[c_out])?,
            None => vec![1.0; c_out],
        };
        use wgpu::BufferUsages as U;
        let label = &spec.weight;
        let weight = gpu.buffer_with(label, bytemuck::cast_slice(&weight), U::STORAGE)?;
        let bias = gpu.buffer_with(label, bytemuck::cast_slice(&bias), U::STORAGE)?;
        let scale = gpu.buffer_with(label, bytemuck::cast_slice(&scale), U::STORAGE)?;
        let layout = bind_layout(&gpu.device, "conv1d", &[UNIFORM, RO, RO, RO, RO, RW, RO]);
        let (res_row, res_offset) = residual.map_or((0, 0), |r| (r.row, r.history));
        let constants = [
            ("C_IN", c_in as f64),
            ("C_OUT", c_out as f64),
            ("K", spec.kernel as f64),
            ("STRIDE", spec.stride as f64),
            ("ACT", spec.act as u32 as f64),
            ("SCALE", spec.scale.is_some() as u32 as f64),
            ("RESIDUAL", residual.is_some() as u32 as f64),
            ("REPLICATE", spec.replicate as u32 as f64),
            ("IN_HISTORY", input.history as f64),
            ("IN_ROW", input.row as f64),
            ("OUT_ROW", output.row as f64),
            ("OUT_OFFSET", output.history as f64),
            ("RES_ROW", res_row as f64),
            ("RES_OFFSET", res_offset as f64),
            ("T_OUT_PER_FRAME", output.per_frame as f64),
        ];
        let name = spec.weight.trim_end_matches(".weight");
        let variant = |kernel: MimiKernel, tile: (u32, u32)| {
            let module = shader(gpu, "conv1d", &mimi_source(kernel));
            let mut constants = constants.to_vec();
            if kernel == MimiKernel::Conv1dSplit {
                constants.push(("CO_TILE", tile.1 as f64));
            }
            let label = format!("{} {name}", kernel.name());
            Variant {
                pipeline: pipeline(gpu, &label, &layout, &module, &constants),
                tile,
                label,
            }
        };
        let (narrow, wide, wide_from) = if output.per_frame <= CONV_SPLIT_MAX_PER_FRAME {
            let [small, large] = CONV_SPLIT_TILES;
            (
                variant(MimiKernel::Conv1dSplit, small),
                variant(MimiKernel::Conv1dSplit, large),
                CONV_SPLIT_WIDE_MIN_COLUMNS,
            )
        } else {
            (
                variant(MimiKernel::Conv1d, (CONV_WORKGROUP, 1)),
                variant(MimiKernel::Conv1dTiled, CONV_TILED_TILE),
                CONV_TILED_MIN_COLUMNS,
            )
        };
        let label = &spec.weight;
        // An unused residual binding still needs a buffer: the input.
        let res = residual.map_or(&input.buffer, |r| &r.buffer);
        let bind_group = bind_group(
            &gpu.device,
            label,
            &layout,
            &[
                params,
                &input.buffer,
                &weight,
                &bias,
                res,
                &output.buffer,
                &scale,
            ],
        );
        Ok(Self {
            narrow,
            wide,
            wide_from,
            bind_group,
            c_out: c_out as u32,
            out_per_frame: output.per_frame,
            _weights: [weight, bias, scale],
        })
    }

    pub fn record(&self, rec: &mut Recorder, frames: u32) {
        let columns = frames * self.out_per_frame;
        let v = if columns >= self.wide_from {
            &self.wide
        } else {
            &self.narrow
        };
        let groups = [columns.div_ceil(v.tile.0), self.c_out.div_ceil(v.tile.1), 1];
        rec.dispatch(&v.label, &v.pipeline, &self.bind_group, groups);
    }
}

/// Moves a [`Signal`]'s last `history` columns to its front once the conv
/// reading it has run.
pub(crate) struct HistoryShift {
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    channels: u32,
    history: u32,
}

impl HistoryShift {
    pub fn new(gpu: &Gpu, name: &str, params: &wgpu::Buffer, signal: &Signal) -> Result<Self> {
        if signal.per_frame < signal.history {
            return Err(GpuError::Unsupported(format!(
                "{name}: history {} longer than one frame ({})",
                signal.history, signal.per_frame
            )));
        }
        let layout = bind_layout(&gpu.device, "conv history", &[UNIFORM, RW]);
        let module = shader(gpu, "conv history", &mimi_source(MimiKernel::ConvHistory));
        let constants = [
            ("C", signal.channels as f64),
            ("ROW", signal.row as f64),
            ("HISTORY", signal.history as f64),
            ("T_PER_FRAME", signal.per_frame as f64),
        ];
        let pipeline = pipeline(gpu, name, &layout, &module, &constants);
        let bind_group = bind_group(&gpu.device, name, &layout, &[params, &signal.buffer]);
        Ok(Self {
            pipeline,
            bind_group,
            channels: signal.channels,
            history: signal.history,
        })
    }

    pub fn record(&self, rec: &mut Recorder) {
        let groups = [self.history.div_ceil(CONV_WORKGROUP), self.channels, 1];
        rec.dispatch("conv_history", &self.pipeline, &self.bind_group, groups);
    }
}

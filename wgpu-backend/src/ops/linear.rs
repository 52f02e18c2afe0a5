//! [`GpuLinear`]: a weight matrix on the GPU as candle ops (matvec.wgsl).

use std::sync::Arc;

use candle_core::quantized::QTensor;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Shape, Tensor};

use super::{f32_slice, wrap, GpuOps};
use crate::device::compute_pass;
use crate::error::{GpuError, Result};
use crate::kernels::GpuFormat;
use crate::matvec::{MatvecInput, MatvecKey, MatvecOutput, MatvecWeights};
use crate::repack::{self, PackedMatrix};

/// A weight matrix on the GPU, applied by matvec.wgsl.
pub struct GpuLinear {
    ops: Arc<GpuOps>,
    pub(super) weights: MatvecWeights,
    rows: usize,
    cols: usize,
}

impl GpuLinear {
    /// From a quantized candle matrix `[rows, cols]` (F32, F16, Q8_0, Q4_0,
    /// Q4_K; other ggml types are dequantized to f32).
    pub fn from_qtensor(ops: &Arc<GpuOps>, name: &str, w: &QTensor) -> Result<Self> {
        Self::upload(ops, repack::pack_qtensor(name, w)?)
    }

    /// From a float candle matrix `[rows, cols]`, kept in f32.
    pub fn from_tensor(ops: &Arc<GpuOps>, name: &str, w: &Tensor) -> Result<Self> {
        let &[rows, cols] = w.dims() else {
            return Err(GpuError::Unsupported(format!(
                "`{name}` has shape {:?}, not a matrix",
                w.dims()
            )));
        };
        if !cols.is_multiple_of(32) {
            return Err(GpuError::Unsupported(format!(
                "`{name}` has {cols} columns, not a multiple of 32"
            )));
        }
        let xs = w
            .to_dtype(DType::F32)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(stt_model::Error::from)?;
        Self::upload(ops, PackedMatrix::from_f32(name, rows, cols, &xs))
    }

    pub(super) fn upload(ops: &Arc<GpuOps>, m: PackedMatrix) -> Result<Self> {
        let (rows, cols) = (m.rows, m.cols);
        Ok(Self {
            ops: ops.clone(),
            weights: MatvecWeights::upload(&ops.gpu, m)?,
            rows,
            cols,
        })
    }

    /// The layout the weights were repacked into.
    pub fn format(&self) -> GpuFormat {
        self.weights.format
    }

    /// `x · Wᵀ` for `x` of shape `[..., cols]`.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.apply_op1_no_bwd(&MatvecOp {
            linear: self,
            input: MatvecInput::Plain,
            gated: false,
        })
    }

    /// `silu(y₁) ⊙ y₂` for `[y₁, y₂] = rms_norm(x, alpha, eps) · Wᵀ` (the
    /// engine's linear_in: norm folded in, moshi's gate applied on output).
    pub fn forward_rms_norm_gated(
        &self,
        x: &Tensor,
        alpha: &Tensor,
        eps: f32,
    ) -> candle_core::Result<Tensor> {
        self.rms_norm_op(x, alpha, eps, true)
    }

    /// `rms_norm(x, alpha, eps) · Wᵀ` (candle_nn's rms_norm), fused.
    pub fn forward_rms_norm(
        &self,
        x: &Tensor,
        alpha: &Tensor,
        eps: f32,
    ) -> candle_core::Result<Tensor> {
        self.rms_norm_op(x, alpha, eps, false)
    }

    fn rms_norm_op(
        &self,
        x: &Tensor,
        alpha: &Tensor,
        eps: f32,
        gated: bool,
    ) -> candle_core::Result<Tensor> {
        let op = NormMatvecOp {
            linear: self,
            eps,
            gated,
        };
        x.apply_op2_no_bwd(alpha, &op)
    }

    /// `(silu(x₁) ⊙ x₂) · Wᵀ` where `x = [x₁, x₂]` along the last dim
    /// (moshi's gated MLP), fused.
    pub fn forward_silu_gated(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.apply_op1_no_bwd(&MatvecOp {
            linear: self,
            input: MatvecInput::SiluGate,
            gated: false,
        })
    }

    /// Runs the matvec once per input row, all in one submit.
    fn run(
        &self,
        input: MatvecInput,
        gated: bool,
        eps: f32,
        x: &[f32],
        alpha: Option<&[f32]>,
    ) -> Result<Vec<f32>> {
        let out_rows = if gated { self.rows / 2 } else { self.rows };
        let width = match input {
            MatvecInput::SiluGate => 2 * self.cols,
            _ => self.cols,
        };
        let m = x.len() / width;
        let ops = &self.ops;
        use wgpu::BufferUsages as U;
        let xs = ops.upload("op input", bytemuck::cast_slice(x), U::COPY_SRC)?;
        let x_row = ops.empty("op input row", (4 * width) as u64, U::STORAGE | U::COPY_DST)?;
        let y_row = ops.empty(
            "op output row",
            (4 * out_rows) as u64,
            U::STORAGE | U::COPY_SRC,
        )?;
        let ys = ops.empty(
            "op output",
            (4 * m * out_rows) as u64,
            U::COPY_SRC | U::COPY_DST,
        )?;
        let alpha = alpha
            .map(|a| ops.upload("op alpha", bytemuck::cast_slice(a), U::STORAGE))
            .transpose()?;
        let output = if gated {
            MatvecOutput::Gated
        } else {
            MatvecOutput::Set(0)
        };
        let key = MatvecKey::new(&self.weights, input, output, (1, 1), ops.matvec.lanes);
        let pipeline = ops.matvec.get(&ops.gpu, key, eps);
        let bg = (ops.matvec).bind(&ops.gpu, &self.weights, &x_row, alpha.as_ref(), &y_row);
        let mut enc = ops.gpu.encoder("op matvec");
        let (xb, yb) = ((4 * width) as u64, (4 * out_rows) as u64);
        for i in 0..m as u64 {
            enc.copy_buffer_to_buffer(&xs, i * xb, &x_row, 0, xb);
            {
                let mut pass = compute_pass(&mut enc, "op matvec");
                pass.set_pipeline(&pipeline);
                pass.set_bind_group(0, &bg, &[]);
                pass.dispatch_workgroups(key.workgroups(), 1, 1);
            }
            enc.copy_buffer_to_buffer(&y_row, 0, &ys, i * yb, yb);
        }
        ops.finish_and_read(enc, &ys, m * out_rows)
    }

    #[allow(clippy::too_many_arguments)]
    fn output(
        &self,
        op: &str,
        input: MatvecInput,
        gated: bool,
        eps: f32,
        x: &[f32],
        dims: &[usize],
        alpha: Option<&[f32]>,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let width = match input {
            MatvecInput::SiluGate => 2 * self.cols,
            _ => self.cols,
        };
        if dims.last() != Some(&width) {
            candle_core::bail!("{op}: input {dims:?} must end in {width}");
        }
        if gated && !self.rows.is_multiple_of(2) {
            candle_core::bail!("{op}: a gated output needs an even number of rows");
        }
        let y = self.run(input, gated, eps, x, alpha).map_err(wrap)?;
        let mut out_dims = dims.to_vec();
        if let Some(last) = out_dims.last_mut() {
            *last = if gated { self.rows / 2 } else { self.rows };
        }
        Ok((CpuStorage::F32(y), Shape::from(out_dims)))
    }
}

struct MatvecOp<'a> {
    linear: &'a GpuLinear,
    input: MatvecInput,
    gated: bool,
}

impl CustomOp1 for MatvecOp<'_> {
    fn name(&self) -> &'static str {
        match self.input {
            MatvecInput::SiluGate => "gpu-silu-gated-matvec",
            _ => "gpu-matvec",
        }
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(self.name(), storage, layout)?;
        self.linear.output(
            self.name(),
            self.input,
            self.gated,
            0.0,
            x,
            layout.dims(),
            None,
        )
    }
}

struct NormMatvecOp<'a> {
    linear: &'a GpuLinear,
    eps: f32,
    gated: bool,
}

impl CustomOp2 for NormMatvecOp<'_> {
    fn name(&self) -> &'static str {
        "gpu-rms-norm-matvec"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(self.name(), s1, l1)?;
        let alpha = f32_slice(self.name(), s2, l2)?;
        if alpha.len() != self.linear.cols {
            candle_core::bail!(
                "{}: alpha has {} values for {} columns",
                self.name(),
                alpha.len(),
                self.linear.cols
            );
        }
        self.linear.output(
            self.name(),
            MatvecInput::RmsNorm,
            self.gated,
            self.eps,
            x,
            l1.dims(),
            Some(alpha),
        )
    }
}

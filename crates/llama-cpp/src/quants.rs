//! ggml's own dequantization of a tensor type and llama.cpp's `llama-quantize`, as oracles
//! for the tuned engine's formats that candle does not read (IQ4_NL, IQ4_XS).

use crate::LlamaCppError;

use std::ffi::CString;
use std::path::Path;

/// ggml's values of `bytes`, whole blocks of GGUF type `type_id` (20 for IQ4_NL), as its
/// `to_float` computes them.
pub fn dequantize(type_id: u32, bytes: &[u8]) -> Result<Vec<f32>, LlamaCppError> {
    // SAFETY: ggml returns a pointer to its static table entry, or null past the table.
    let traits = unsafe { llama_cpp_sys_2::ggml_get_type_traits(type_id as _).as_ref() }
        .ok_or_else(|| LlamaCppError::Backend(format!("ggml has no type {type_id}")))?;
    let to_float = traits
        .to_float
        .ok_or_else(|| LlamaCppError::Backend(format!("ggml cannot dequantize type {type_id}")))?;
    let (block_values, block_bytes) = (traits.blck_size as usize, traits.type_size);
    if block_bytes == 0 || !bytes.len().is_multiple_of(block_bytes) {
        return Err(LlamaCppError::Backend(format!(
            "{} bytes are not whole blocks of {block_bytes} bytes (type {type_id})",
            bytes.len()
        )));
    }
    let mut values = vec![0f32; bytes.len() / block_bytes * block_values];
    // SAFETY: `bytes` holds whole blocks of the type, `values` room for all their values.
    unsafe {
        to_float(
            bytes.as_ptr().cast(),
            values.as_mut_ptr(),
            values.len() as i64,
        )
    };
    Ok(values)
}

/// Writes `input` (a GGUF model) quantized to llama.cpp file type `ftype` (30 for IQ4_XS, as
/// `llama-quantize` numbers them) into `output`, as `llama-quantize` does with its default
/// per-tensor rules; quantized tensors of the input are requantized.
pub fn quantize_model(input: &Path, output: &Path, ftype: u32) -> Result<(), LlamaCppError> {
    let path = |p: &Path| {
        CString::new(p.to_string_lossy().as_bytes()).map_err(|_| LlamaCppError::Load {
            path: p.display().to_string(),
            reason: "the path holds a NUL byte".into(),
        })
    };
    let (from, to) = (path(input)?, path(output)?);
    // its progress lines are kept from stderr, its warnings for the error
    crate::log::capture();
    // SAFETY: plain data, returned by value.
    let mut params = unsafe { llama_cpp_sys_2::llama_model_quantize_default_params() };
    params.ftype = ftype as _;
    params.allow_requantize = true;
    // SAFETY: both paths are NUL-terminated strings that outlive the call; params is valid.
    let status =
        unsafe { llama_cpp_sys_2::llama_model_quantize(from.as_ptr(), to.as_ptr(), &params) };
    if status != 0 {
        return Err(LlamaCppError::Load {
            path: input.display().to_string(),
            reason: format!(
                "llama_model_quantize to file type {ftype} returned {status}: {}",
                crate::log::take()
            ),
        });
    }
    Ok(())
}

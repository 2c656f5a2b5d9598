//! The real generator: a GGUF model run by mistral.rs.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mistralrs::core::{
    AddModelConfig, AutoDeviceMapParams, DefaultSchedulerMethod, DeviceMapSetting, EngineConfig,
    GGUFLoaderBuilder, GGUFSpecificConfig, ModelDType, SchedulerConfig, TokenSource,
};
use mistralrs::{Model, RequestBuilder, Response, TextMessageRole};
use tokio::sync::mpsc;

use super::{
    Admission, ChatTurn, GenEvent, GenerationError, GenerationRequest, Speaker, TextGenerator,
};
use crate::config::DeviceKind;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "model file {0} not found: run `frontdesk fetch-models`, or point --model / FRONTDESK_MODEL at a GGUF file"
    )]
    NotFound(PathBuf),
    #[error("{0} is not a GGUF model file (its first bytes are not `GGUF`)")]
    NotGguf(PathBuf),
    #[error("cannot load model {path}: {message}")]
    Load { path: PathBuf, message: String },
    #[error(transparent)]
    Requantize(#[from] super::requantize::RequantizeError),
}

/// Most replies whose KV caches are kept for reuse (mistral.rs' default).
const PREFIX_CACHE_ENTRIES: usize = 16;

pub struct MistralGenerator {
    model: Arc<Model>,
    admission: Admission,
    description: String,
    load_time: Duration,
    /// The tokens that end a reply (the GGUF's end-of-sequence token).
    end_tokens: Vec<u32>,
}

impl MistralGenerator {
    /// Loads a GGUF file. On CPU activations run in f32: mistral.rs' automatic
    /// choice (bf16) is emulated on CPUs without native bf16 and much slower.
    /// With `requantize_into`, a model on the CPU whose weights have only
    /// slow CPU kernels is loaded from a Q8_0 copy kept in that folder.
    /// Up to `dense_prefill_mb` of dequantized weights serve inputs of
    /// several rows (prompts, batches) on the CPU. Up to `prefix_cache_mb`
    /// of recent replies' KV caches are kept for prompts that start the same
    /// way.
    pub async fn load(
        source: &Path,
        device: DeviceKind,
        requantize_into: Option<&Path>,
        admission: Admission,
        max_running: usize,
        dense_prefill_mb: u32,
        prefix_cache_mb: u32,
    ) -> Result<MistralGenerator, ModelError> {
        check_gguf(source)?;
        let started = Instant::now();
        // The budget is the process's: the copies are made at the first
        // prompt, in the patched mistralrs-quant (vendor/README.md).
        mistralrs_quant::dense_prefill::set_budget((dense_prefill_mb as usize) << 20, false);
        let path = match (device, requantize_into) {
            (DeviceKind::Cpu, Some(dir)) => {
                let (file, dir) = (source.to_path_buf(), dir.to_path_buf());
                tokio::task::spawn_blocking(move || super::requantize::for_cpu(&file, &dir))
                    .await
                    .map_err(|e| ModelError::Load {
                        path: source.to_path_buf(),
                        message: e.to_string(),
                    })??
            }
            _ => source.to_path_buf(),
        };
        let path = path.as_path();
        let load_err = |message: String| ModelError::Load {
            path: path.to_path_buf(),
            message,
        };
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_string_lossy()
            .to_string();
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .ok_or_else(|| load_err("path has no file name".into()))?;
        let (dtype, mistral_device) = match device {
            DeviceKind::Cpu => (ModelDType::F32, mistralrs::Device::Cpu),
            DeviceKind::Cuda => (
                ModelDType::Auto,
                mistralrs::best_device(false).map_err(|e| load_err(e.to_string()))?,
            ),
        };
        let pipeline = tokio::task::spawn_blocking(move || {
            let loader = GGUFLoaderBuilder::new(
                None,
                None,
                dir,
                vec![file],
                GGUFSpecificConfig { topology: None },
                false,
                None,
            )
            .build();
            loader.load_model_from_hf(
                None,
                TokenSource::None,
                &dtype,
                &mistral_device,
                true,
                DeviceMapSetting::Auto(AutoDeviceMapParams::default_text()),
                None,
                None,
            )
        })
        .await
        .map_err(|e| load_err(e.to_string()))?
        .map_err(|e| load_err(format!("{e:#}")))?;
        let scheduler = SchedulerConfig::DefaultScheduler {
            method: DefaultSchedulerMethod::Fixed(
                NonZeroUsize::new(max_running.max(1)).expect("max(1) is non-zero"),
            ),
        };
        // The prefix cache as patched in vendor/mistralrs-core: bounded on
        // every device (0.8.1 never evicted on the CPU: RSS grew from 525 MB
        // to 1.3 GB over 40 conversations), by bytes as well as entries, and
        // never matching past what it stored (0.8.1 could attend over one
        // zeroed row).
        // The byte budget is the process's; a model without reuse leaves it
        // to one that has it.
        if prefix_cache_mb > 0 {
            mistralrs::core::prefix_cache_budget::set_max_bytes((prefix_cache_mb as usize) << 20);
        }
        let header = read_gguf_header(path);
        // Customers' replies at different lengths decode in one batch (the
        // patch in vendor/mistralrs-core); only the llama architecture's
        // forward masks the padding that needs, and the switch is the
        // process's, so the last model loaded decides.
        // Measured and tested on the CPU only.
        let batch_any_length = matches!(device, DeviceKind::Cpu)
            && header.as_ref().and_then(|h| h.architecture.as_deref()) == Some("llama");
        mistralrs::core::padded_decode::set_enabled(batch_any_length);
        let engine = EngineConfig {
            throughput_logging_enabled: false,
            no_prefix_cache: prefix_cache_mb == 0,
            prefix_cache_n: PREFIX_CACHE_ENTRIES,
            ..EngineConfig::default()
        };
        let model = mistralrs::model_builder_trait::build_model_from_pipeline(
            pipeline,
            scheduler,
            AddModelConfig {
                engine_config: engine,
                mcp_client_config: None,
                loader_config: None,
            },
        )
        .await;
        let load_time = started.elapsed();
        let converted = if path == source { "" } else { " as Q8_0" };
        let description = format!(
            "{}{converted} ({device:?})",
            source.file_name().unwrap_or_default().to_string_lossy(),
        );
        tracing::info!(model = %description, load_ms = load_time.as_millis() as u64, "model loaded");
        Ok(MistralGenerator {
            model: Arc::new(model),
            admission,
            description,
            load_time,
            end_tokens: header.and_then(|h| h.end_token).into_iter().collect(),
        })
    }

    /// The same loaded model behind another admission queue.
    pub fn with_admission(&self, admission: Admission) -> MistralGenerator {
        MistralGenerator {
            model: self.model.clone(),
            admission,
            description: self.description.clone(),
            load_time: self.load_time,
            end_tokens: self.end_tokens.clone(),
        }
    }

    /// Like [`TextGenerator::start`], but the reply runs to exactly
    /// `max_tokens`: the end-of-reply token is barred. For measuring
    /// decoding at a known batch size, as llama.cpp's batched bench does.
    pub fn start_fixed_length(
        &self,
        request: GenerationRequest,
    ) -> Result<mpsc::Receiver<GenEvent>, GenerationError> {
        // mistral.rs 0.8.1 takes a logits bias but never applies it; a
        // logits processor is applied.
        let barred = self.end_tokens.clone();
        let bar: Arc<dyn mistralrs::CustomLogitsProcessor> =
            Arc::new(move |logits: &candle_core::Tensor, _: &[u32]| {
                let mut values = logits.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?;
                for &t in &barred {
                    if let Some(v) = values.get_mut(t as usize) {
                        *v = f32::NEG_INFINITY;
                    }
                }
                candle_core::Tensor::from_vec(values, logits.shape(), logits.device())?
                    .to_dtype(logits.dtype())
            });
        self.start_with(request, Some(bar))
    }

    fn start_with(
        &self,
        request: GenerationRequest,
        logits_processor: Option<Arc<dyn mistralrs::CustomLogitsProcessor>>,
    ) -> Result<mpsc::Receiver<GenEvent>, GenerationError> {
        let ticket = self.admission.try_admit()?;
        let (tx, rx) = mpsc::channel(64);
        let model = self.model.clone();
        tokio::spawn(async move {
            let _running = ticket.wait_turn().await;
            if tx.is_closed() {
                return;
            }
            let event = run(&model, &request, logits_processor, &tx).await;
            let _ = tx.send(event).await;
        });
        Ok(rx)
    }

    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    /// The token ids the model reads for `text` as it is (no chat
    /// template, no special tokens), to check the tokeniser against the
    /// model's own (vendor/README.md, the pre-tokenizer patch).
    pub async fn tokenize(&self, text: &str) -> Result<Vec<u32>, mistralrs::error::Error> {
        self.model
            .tokenize(
                either::Either::Right(text.to_string()),
                None,
                false,
                false,
                None,
            )
            .await
    }

    /// The token ids of the whole prompt of `request`, chat template and
    /// generation prompt included.
    pub async fn prompt_tokens(
        &self,
        request: &GenerationRequest,
    ) -> Result<Vec<u32>, mistralrs::error::Error> {
        let mut messages = mistralrs::TextMessages::new();
        for (role, text) in messages_of(request) {
            messages = messages.add_message(role, text);
        }
        self.model
            .tokenize(either::Either::Left(messages), None, true, true, None)
            .await
    }
}

/// The chat messages of a request, in order: the instruction, then the turns.
fn messages_of(request: &GenerationRequest) -> impl Iterator<Item = (TextMessageRole, &str)> {
    let system =
        (!request.system.is_empty()).then_some((TextMessageRole::System, &*request.system));
    system
        .into_iter()
        .chain(request.turns.iter().map(|ChatTurn { speaker, text }| {
            let role = match speaker {
                Speaker::Customer => TextMessageRole::User,
                Speaker::Assistant => TextMessageRole::Assistant,
            };
            (role, text.as_str())
        }))
}

/// What the generator needs from a GGUF file's header, read once.
struct GgufHeader {
    /// `general.architecture`
    architecture: Option<String>,
    /// `tokenizer.ggml.eos_token_id`
    end_token: Option<u32>,
}

fn read_gguf_header(path: &Path) -> Option<GgufHeader> {
    use candle_core::quantized::gguf_file;
    let mut reader = std::io::BufReader::new(std::fs::File::open(path).ok()?);
    let metadata = gguf_file::Content::read(&mut reader).ok()?.metadata;
    Some(GgufHeader {
        architecture: metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok().cloned()),
        end_token: metadata
            .get("tokenizer.ggml.eos_token_id")
            .and_then(|v| v.to_u32().ok()),
    })
}

fn check_gguf(path: &Path) -> Result<(), ModelError> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let mut file =
        std::fs::File::open(path).map_err(|_| ModelError::NotFound(path.to_path_buf()))?;
    if file.read_exact(&mut magic).is_err() || &magic != b"GGUF" {
        return Err(ModelError::NotGguf(path.to_path_buf()));
    }
    Ok(())
}

fn build_request(request: &GenerationRequest) -> RequestBuilder {
    // The deterministic sampler replaces every sampling parameter, so it goes first.
    let mut builder = RequestBuilder::new()
        .set_deterministic_sampler()
        .set_sampler_max_len(request.max_tokens)
        .set_sampler_frequency_penalty(0.3);
    for (role, text) in messages_of(request) {
        builder = builder.add_message(role, text);
    }
    builder
}

impl TextGenerator for MistralGenerator {
    fn start(
        &self,
        request: GenerationRequest,
    ) -> Result<mpsc::Receiver<GenEvent>, GenerationError> {
        self.start_with(request, None)
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    fn in_flight(&self) -> usize {
        self.admission.in_flight()
    }
}

/// Streams tokens into `tx`; returns the closing event.
async fn run(
    model: &Model,
    request: &GenerationRequest,
    logits_processor: Option<Arc<dyn mistralrs::CustomLogitsProcessor>>,
    tx: &mpsc::Sender<GenEvent>,
) -> GenEvent {
    let mut builder = build_request(request);
    if let Some(processor) = logits_processor {
        builder = builder.add_logits_processor(processor);
    }
    let mut stream = match model.stream_chat_request(builder).await {
        Ok(s) => s,
        Err(e) => return GenEvent::Failed(e.to_string()),
    };
    let mut tokens = 0;
    let mut prompt_tokens = None;
    while let Some(response) = stream.next().await {
        match response {
            Response::Chunk(chunk) => {
                if let Some(usage) = &chunk.usage {
                    prompt_tokens = Some(usage.prompt_tokens);
                }
                let Some(choice) = chunk.choices.first() else {
                    continue;
                };
                if let Some(text) = &choice.delta.content
                    && !text.is_empty()
                {
                    tokens += 1;
                    if tx.send(GenEvent::Token(text.clone())).await.is_err() {
                        // The listener went away: dropping the stream stops the sequence.
                        return GenEvent::Done {
                            tokens,
                            prompt_tokens,
                        };
                    }
                }
                if choice.finish_reason.is_some() {
                    return GenEvent::Done {
                        tokens,
                        prompt_tokens,
                    };
                }
            }
            Response::Done(done) => {
                return GenEvent::Done {
                    tokens,
                    prompt_tokens: Some(done.usage.prompt_tokens),
                };
            }
            Response::ModelError(message, _) => return GenEvent::Failed(message),
            Response::InternalError(e) | Response::ValidationError(e) => {
                return GenEvent::Failed(e.to_string());
            }
            _ => {}
        }
    }
    GenEvent::Done {
        tokens,
        prompt_tokens,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use candle_core::quantized::{GgmlDType, QTensor};
    use candle_core::{Device, Tensor};
    use mistralrs_quant::{GgufMatMul, QuantMethod, QuantMethodConfig, dense_prefill};

    use super::super::largest_abs;

    /// A GGUF layer of a random `rows` x 512 weight in `dtype`, and candle's
    /// own product of the same weight.
    fn layer_and_candles(
        dtype: GgmlDType,
        rows: usize,
    ) -> (GgufMatMul, candle_core::quantized::QMatMul) {
        let weight = Tensor::randn(0f32, 1.0, (rows, 512), &Device::Cpu).unwrap();
        let q = Arc::new(QTensor::quantize(&weight, dtype).unwrap());
        let layer = GgufMatMul::new(QuantMethodConfig::Gguf {
            q_weight: q.clone(),
            b: None,
        })
        .unwrap();
        (layer, candle_core::quantized::QMatMul::from_arc(q).unwrap())
    }

    /// Inputs of 1 to 17 rows of 512 (below dense_prefill::DENSE_MIN_ROWS,
    /// so no dense copy is made whatever budget another test sets), then 2
    /// rows of values that round from exact halves (each block's largest is
    /// 127, so the quantizer's scale is 1): ties round away from zero, as
    /// candle rounds them.
    fn few_row_inputs() -> Vec<Tensor> {
        let device = Device::Cpu;
        let halves: Vec<f32> = (0..2 * 512)
            .map(|i| {
                if i % 32 == 0 {
                    127.0
                } else {
                    (i % 32) as f32 - 16.5
                }
            })
            .collect();
        let mut inputs: Vec<Tensor> = [1, 2, 3, 5, 8, 17]
            .into_iter()
            .map(|rows| Tensor::randn(0f32, 1.0, (rows, 1, 512), &device).unwrap())
            .collect();
        inputs.push(Tensor::from_vec(halves, (2, 1, 512), &device).unwrap());
        inputs
    }

    /// The patched mistralrs-quant (vendor/README.md) multiplies a few rows
    /// (customers decoded together, or one) reading each weight once, and
    /// every value is the one candle's own kernel gives, for Q8_0 (its own
    /// AVX2 kernel, used where the columns are not whole groups of 8) and
    /// the other block formats, on sizes that fill no tile.
    #[test]
    fn few_rows_give_exactly_what_candles_kernel_gives() {
        use candle_nn::Module;
        for dtype in [
            GgmlDType::Q8_0,
            GgmlDType::Q4_0,
            GgmlDType::Q4K,
            GgmlDType::Q6K,
        ] {
            let (layer, candle) = layer_and_candles(dtype, 203);
            for input in few_row_inputs() {
                let ours = layer.forward(&input).unwrap();
                let theirs = candle.forward(&input).unwrap();
                assert_eq!(ours.dims(), theirs.dims());
                let rows = input.dim(0).unwrap();
                assert_eq!(
                    largest_abs(&(&ours - &theirs).unwrap()),
                    0.0,
                    "{dtype:?}, {rows} rows"
                );
            }
        }
    }

    /// The patched mistralrs-quant (vendor/README.md) multiplies Q8_0
    /// weights with whole groups of 8 columns through a repacked copy where
    /// the CPU has AVX-512 VNNI: each row's values are the same to the bit
    /// whatever rows it comes with (so a reply does not depend on who else
    /// is decoding), and within float rounding of candle's (a tie rounded
    /// the other way would move a value by about 1).
    #[test]
    fn packed_q8_0_rows_do_not_depend_on_their_batch_and_match_candle() {
        use candle_nn::Module;
        let (layer, candle) = layer_and_candles(GgmlDType::Q8_0, 200);
        for input in few_row_inputs() {
            let rows = input.dim(0).unwrap();
            let ours = layer.forward(&input).unwrap();
            let theirs = candle.forward(&input).unwrap();
            assert_eq!(ours.dims(), theirs.dims());
            let worst = largest_abs(&(&ours - &theirs).unwrap());
            let scale = largest_abs(&theirs);
            assert!(
                worst <= 1e-5 * scale,
                "{rows} rows: {worst} off candle's {scale}"
            );
            for row in 0..rows {
                let alone = layer.forward(&input.narrow(0, row, 1).unwrap()).unwrap();
                let in_batch = ours.narrow(0, row, 1).unwrap();
                assert_eq!(
                    largest_abs(&(&alone - &in_batch).unwrap()),
                    0.0,
                    "row {row} of {rows}"
                );
            }
        }
    }

    /// The patched mistralrs-quant (vendor/README.md) gives a prompt of
    /// several rows the same product through the dense copy as the
    /// quantized kernel does, and one row keeps the quantized kernel.
    #[test]
    fn dense_prefill_matches_the_quantized_kernel() {
        let device = Device::Cpu;
        let weight = Tensor::randn(0f32, 1.0, (64, 128), &device).unwrap();
        let q = Arc::new(QTensor::quantize(&weight, GgmlDType::Q8_0).unwrap());
        let layer = |q: &Arc<QTensor>| {
            GgufMatMul::new(QuantMethodConfig::Gguf {
                q_weight: q.clone(),
                b: None,
            })
            .unwrap()
        };
        let prompt = Tensor::randn(0f32, 1.0, (1, 40, 128), &device).unwrap();
        let quantized = layer(&q).forward(&prompt).unwrap();

        dense_prefill::set_budget(1 << 20, false);
        let dense_layer = layer(&q);
        let dense = dense_layer.forward(&prompt).unwrap();
        assert_eq!(dense_prefill::used_bytes(), 64 * 128 * 2, "one f16 copy");
        let worst = largest_abs(&(&dense - &quantized).unwrap());
        let scale = largest_abs(&quantized);
        assert!(
            worst <= 0.02 * scale,
            "dense {worst} off a scale of {scale}"
        );

        let one_row = Tensor::randn(0f32, 1.0, (1, 1, 128), &device).unwrap();
        let a = dense_layer.forward(&one_row).unwrap();
        let b = layer(&q).forward(&one_row).unwrap();
        assert_eq!(
            largest_abs(&(&a - &b).unwrap()),
            0.0,
            "one row stays quantized"
        );

        drop(dense_layer);
        assert_eq!(dense_prefill::used_bytes(), 0, "the copy's bytes come back");
        dense_prefill::set_budget(0, false);
    }
}

use candle_core::IndexOp;
use stt_model::{block_on, Event, Model};
fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let model = Model::from_dir(std::path::Path::new(&args[1]), Some(&args[2]))?;
    let pcm = stt_model::audio::read_all_24k(std::path::Path::new(&args[3]))?;
    let mut mimi = model.mimi_encoder(&candle_core::Device::Cpu)?;
    {
        let vb = model.mimi.var_builder(&candle_core::Device::Cpu);
        let mut m = moshi::mimi::Mimi::new(model.config.mimi_config(), vb)?;
        let xs = candle_core::Tensor::from_slice(&pcm[..24000*5], (1, 1, 24000*5), &candle_core::Device::Cpu)?;
        let lat = m.encode_pre_quantize(&xs)?;
        let v = lat.flatten_all()?.to_vec1::<f32>()?;
        let mean = v.iter().sum::<f32>() / v.len() as f32;
        let std = (v.iter().map(|x| (x-mean).powi(2)).sum::<f32>() / v.len() as f32).sqrt();
        println!("latent {:?} mean {mean} std {std}", lat.dims());
        // per-time std
        let t = lat.dims()[2];
        let col: Vec<f32> = (0..t).map(|i| lat.i((0, .., i)).unwrap().to_vec1::<f32>().unwrap()[0]).collect();
        println!("dim0 over time {:?}", &col[..t.min(12)]);
    }
    let mut distinct = std::collections::HashSet::new();
    for f in pcm.chunks_exact(1920).take(60) {
        if let Some(c) = mimi.encode_frame(f)? { distinct.insert(c[0]); if distinct.len() < 5 { println!("codes {:?}", &c[..8]); } }
    }
    println!("distinct codebook-0 codes over 60 frames: {}", distinct.len());
    let mut s = model.cpu_session()?;
    let mut toks = vec![]; let mut words = 0; let mut eot = vec![];
    for ch in pcm.chunks(24000) { for e in block_on(s.push_pcm(ch))? { match e { Event::Step{text_token, end_of_turn, ..} => {toks.push(text_token); eot.push(end_of_turn)}, Event::Word{..} => words += 1, _ => {} } } }
    let d: std::collections::HashSet<_> = toks.iter().collect();
    println!("steps {} distinct tokens {} pads {} eops {} words {}", toks.len(), d.len(), toks.iter().filter(|&&t| t==3).count(), toks.iter().filter(|&&t| t==0).count(), words);
    println!("first tokens {:?}", &toks[..40.min(toks.len())]);
    println!("eot sample {:?}", &eot[..3]);
    Ok(())
}

//! Train ResNet-20 on Fashion-MNIST with docs/method.md's stage-1 recipe, through the library API.
//!
//! Data     Fashion-MNIST from Debian's dataset-fashion-mnist (scripts/setup.sh puts it in
//!          data/); 8,000 search-train + 2,000 validation images (stratified), 10,000 test.
//! Runtime  ~30 s on 2 CPU cores (≈1,000 images/s), a few seconds on a GPU.
//! Expect   validation ≈ 80–84% after 3 epochs, test ≈ 82–84%.
//!
//!     cargo run --release --example train_fashion_mnist
#![allow(clippy::disallowed_methods)] // tests, benches and examples may panic

use anyhow::Result;
use augwise::prelude::*;

fn main() -> Result<()> {
    let device = augwise::device::resolve(DeviceSpec::Auto)?;
    println!("device: {device}");
    let source = DataSpec::default().load()?;
    let splits = Splits::new(&source, &SplitConfig::default().with_limit(Some(10_000)))?.to_device(device.device)?;
    let (mean, std) = splits.train.channel_stats()?;
    let mut pipeline = Pipeline::for_dataset(&splits.train.info, mean, std);
    let model = Model::new(Arch::RESNET20, 1, 10, device.device, 0)?;
    let epochs = 3;
    let config = TrainConfig::default().with_schedule(LrSchedule::official(epochs as f64));
    let mut trainer = Trainer::new(model, pipeline.normalize.clone(), config)?;
    trainer.fit(
        &splits.train,
        Some(&splits.val),
        epochs,
        &mut pipeline,
        &CancelFlag::new(),
        &mut |event| {
            if let FitEvent::Epoch(report) = event {
                println!("{report}")
            }
        },
    )?;
    println!("test accuracy: {:.2}%", 100.0 * trainer.evaluate(&splits.test)?);
    Ok(())
}

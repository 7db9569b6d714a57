//! Prompt token ids for every sequence of a batch.

use crate::planning::spec::Prompt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The prompts of `batch` sequences: seeded random ids below `vocab`, different for every
/// sequence, or the text's ids repeated.
pub fn batch_prompts(prompt: &Prompt, batch: usize, vocab: usize, seed: u64) -> Vec<Vec<u32>> {
    match prompt {
        Prompt::Synthetic { tokens } => (0..batch)
            .map(|b| {
                let mut rng = StdRng::seed_from_u64(seed.wrapping_add(b as u64));
                (0..*tokens)
                    .map(|_| rng.random_range(0..vocab as u32))
                    .collect()
            })
            .collect(),
        Prompt::Text { ids, .. } => vec![ids.clone(); batch],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_prompts_differ_per_sequence_and_repeat_per_seed() {
        let p = Prompt::Synthetic { tokens: 16 };
        let a = batch_prompts(&p, 3, 1000, 7);
        assert_eq!(a.len(), 3);
        assert!(a
            .iter()
            .all(|s| s.len() == 16 && s.iter().all(|&t| t < 1000)));
        assert_ne!(a[0], a[1]);
        assert_eq!(a, batch_prompts(&p, 3, 1000, 7));
    }
}

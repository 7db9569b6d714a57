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

/// Added to the run's seed for the tokens of the depth, so that they differ from the prompt's.
const FILL_SEED_OFFSET: u64 = 1 << 32;

/// The tokens that fill each of `batch` sequences' caches to `depth` before the prompt: seeded
/// random ids below `vocab`, different for every sequence and from the prompts.
pub fn depth_fill(depth: usize, batch: usize, vocab: usize, seed: u64) -> Vec<Vec<u32>> {
    let tokens = Prompt::Synthetic { tokens: depth };
    batch_prompts(&tokens, batch, vocab, seed.wrapping_add(FILL_SEED_OFFSET))
}

/// The first `tokens` tokens of each of `prompts` (all of a shorter one): a prompt as short
/// as the worker's pool-creating pass needs, whatever the run's prompt length.
pub fn opening(prompts: &[Vec<u32>], tokens: usize) -> Vec<Vec<u32>> {
    prompts
        .iter()
        .map(|p| p[..p.len().min(tokens)].to_vec())
        .collect()
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

    #[test]
    fn the_depth_is_filled_with_other_tokens_than_the_prompt() {
        let fill = depth_fill(16, 2, 1000, 7);
        assert!(fill.iter().all(|s| s.len() == 16));
        assert_ne!(
            fill,
            batch_prompts(&Prompt::Synthetic { tokens: 16 }, 2, 1000, 7)
        );
        assert!(depth_fill(0, 2, 1000, 7).iter().all(Vec::is_empty));
    }

    #[test]
    fn an_opening_is_each_prompts_first_tokens() {
        let prompts = batch_prompts(&Prompt::Synthetic { tokens: 16 }, 2, 1000, 7);
        let open = opening(&prompts, 4);
        assert_eq!(
            open,
            vec![prompts[0][..4].to_vec(), prompts[1][..4].to_vec()]
        );
        assert_eq!(opening(&prompts, 100), prompts);
    }
}

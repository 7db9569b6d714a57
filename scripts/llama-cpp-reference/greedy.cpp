// Greedy decoding with llama.cpp's C API, to record the references llamaperf's tests hold the
// tuned engine against (see record.sh). For each prompt line on stdin it prints one JSON line
// with the prompt's ids (no BOS, no special-token parsing), the greedy ids and, per step, the
// gap between the two largest logits. With GREEDY_TENSORS=DIR it also writes the f32 tensors of
// layer 0 and the output's (`result_norm`, `result_output`) of the first pass into DIR.
#include "llama.h"
#include <clocale>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

static void set_tokens(llama_batch_ext * batch, const llama_token * t, int n, llama_pos pos0) {
    llama_batch_ext_clear(batch);
    for (int i = 0; i < n; ++i) {
        const int idx = llama_batch_ext_add_token(batch, 0, t[i]);
        const llama_pos pos = pos0 + i;
        llama_batch_ext_set_pos(batch, idx, &pos);
    }
    llama_batch_ext_set_output_logits(batch, n - 1, true);
}

static std::string json_escape(const std::string & s) {
    std::string o;
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') { o += '\\'; o += c; }
        else if (c < 0x20) { char b[8]; snprintf(b, sizeof b, "\\u%04x", c); o += b; }
        else o += c;
    }
    return o;
}

static int dump_seq = 0;
static bool dump_cb(struct ggml_tensor * t, bool ask, void *) {
    const char * dir = getenv("GREEDY_TENSORS");
    if (!dir) return false;
    std::string name(t->name);
    bool layer0 = name.size() > 2 && name.compare(name.size() - 2, 2, "-0") == 0;
    bool output = name == "result_norm" || name == "result_output";
    bool want = (layer0 || output) && t->type == GGML_TYPE_F32 && dump_seq >= 0;
    if (ask) return want;
    if (!want || !ggml_is_contiguous(t)) return true;
    char path[512];
    snprintf(path, sizeof path, "%s/%02d-%s-%lldx%lldx%lld.f32", dir, dump_seq++, t->name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2]);
    FILE * f = fopen(path, "wb");
    fwrite(t->data, 1, ggml_nbytes(t), f);
    fclose(f);
    return true;
}

int main(int argc, char ** argv) {
    std::setlocale(LC_NUMERIC, "C");
    if (argc < 3) { fprintf(stderr, "usage: %s MODEL N_PREDICT < prompts\n", argv[0]); return 2; }
    const int n_predict = atoi(argv[2]);
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "cannot load %s\n", argv[1]); return 1; }
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);
    std::string prompt;
    while (std::getline(std::cin, prompt)) {
        if (prompt.empty()) continue;
        const int n_prompt = -llama_tokenize(vocab, prompt.c_str(), prompt.size(), NULL, 0, false, false);
        std::vector<llama_token> ids(n_prompt);
        llama_tokenize(vocab, prompt.c_str(), prompt.size(), ids.data(), ids.size(), false, false);
        llama_context_params cp = llama_context_default_params();
        cp.n_ctx = n_prompt + n_predict;
        cp.n_batch = n_prompt;
        cp.n_threads = cp.n_threads_batch = 1;
        // the tuned engine's attention: f32 cache, no flash attention (llama.cpp's default keeps
        // an f16 cache); GREEDY_DEFAULTS=1 records llama.cpp's defaults instead
        if (!getenv("GREEDY_DEFAULTS")) {
            cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
            cp.type_k = GGML_TYPE_F32;
            cp.type_v = GGML_TYPE_F32;
        }
        if (getenv("GREEDY_TENSORS")) { cp.cb_eval = dump_cb; cp.cb_eval_user_data = nullptr; }
        llama_context * ctx = llama_init_from_model(model, cp);
        llama_batch_ext * batch = llama_batch_ext_init(ctx);
        set_tokens(batch, ids.data(), n_prompt, 0);
        std::vector<llama_token> out;
        std::vector<float> gaps;
        int pos = 0, n = n_prompt;
        for (int step = 0; step < n_predict; ++step) {
            if (llama_process(ctx, LLAMA_PROCESS_TYPE_DECODE, batch)) { fprintf(stderr, "decode failed\n"); return 1; }
            pos += n;
            dump_seq = -1;
            const float * logits = llama_get_logits_ith(ctx, -1);
            int best = 0, second = -1;
            for (int v = 1; v < n_vocab; ++v) {
                if (logits[v] > logits[best]) { second = best; best = v; }
                else if (second < 0 || logits[v] > logits[second]) second = v;
            }
            out.push_back(best);
            gaps.push_back(logits[best] - logits[second]);
            llama_token t = best;
            set_tokens(batch, &t, 1, pos);
            n = 1;
        }
        std::string text;
        for (auto t : out) { char buf[256]; int k = llama_token_to_piece(vocab, t, buf, sizeof buf, 0, true); if (k > 0) text.append(buf, k); }
        printf("{\"prompt\": \"%s\", \"prompt_ids\": [", json_escape(prompt).c_str());
        for (size_t i = 0; i < ids.size(); ++i) printf("%s%d", i ? ", " : "", ids[i]);
        printf("], \"ids\": [");
        for (size_t i = 0; i < out.size(); ++i) printf("%s%d", i ? ", " : "", out[i]);
        printf("], \"top_gaps\": [");
        for (size_t i = 0; i < gaps.size(); ++i) printf("%s%.5f", i ? ", " : "", gaps[i]);
        printf("], \"text\": \"%s\"}\n", json_escape(text).c_str());
        fflush(stdout);
        llama_batch_ext_free(batch);
        llama_free(ctx);
    }
    llama_model_free(model);
    return 0;
}

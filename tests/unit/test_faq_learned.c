/* Learning from operators in the FAQ search (services/faq/faq_search.h
 * faq_index_add_click, docs/faq.md "Learning from operators"): words that led
 * staff to an FAQ make a close query find it, also when the FAQ holds none of
 * the words; unrelated queries, filters and bad input are unaffected. Needs
 * MeCab's IPA dictionary (package mecab-ipadic-utf8), as ncc-faq does. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>

#include "../../services/faq/faq_search.h"

static faq_analyzer_t *s_analyzer;
static faq_index_t *s_index;

static const faq_doc_t s_docs[] = {
    {.id = 11,
     .number = 1,
     .question = "粗大ごみの出し方を教えてください",
     .answer = "粗大ごみは事前に申し込みが必要です。収集日と料金をお知らせします。",
     .status = "published",
     .visibility = "public",
     .category = "ごみ"},
    {.id = 12,
     .number = 2,
     .question = "住民票の写しを取りたい",
     .answer = "区民課の窓口で本人確認書類を見せて請求してください。",
     .status = "published",
     .visibility = "public",
     .category = "戸籍"},
    {.id = 13,
     .number = 3,
     .question = "犬の登録の手続き",
     .answer = "犬を飼い始めたら三十日以内に登録してください。",
     .status = "published",
     .visibility = "public",
     .category = "動物"},
    {.id = 14,
     .number = 4,
     .question = "楽器の処分についての内部メモ",
     .answer = "職員向けの下書きです。",
     .status = "draft",
     .visibility = "internal",
     .category = "ごみ"},
};

static void s_setup(void)
{
    s_analyzer = faq_analyzer_new("/var/lib/mecab/dic/ipadic-utf8");
    cr_assert_not_null(s_analyzer, "MeCab with the IPA dictionary is needed");
    s_index = faq_index_new(s_analyzer);
    for (size_t i = 0; i < sizeof s_docs / sizeof s_docs[0]; i++)
        cr_assert_eq(faq_index_add(s_index, &s_docs[i]), 0);
}

static void s_teardown(void)
{
    faq_index_destroy(&s_index);
    faq_analyzer_destroy(&s_analyzer);
}

/* The rank (1 = first) of FAQ `id` among the hits of `q` for operators
 * (published only) or for editors, 0 when it is not a hit. */
static size_t s_rank_as(const char *q, int64_t id, bool published_only)
{
    faq_query_t query = {.q = q, .published_only = published_only, .top = 10};
    faq_hit_t *hits = NULL;
    size_t count = 0, rank = 0;
    cr_assert_eq(faq_index_search(s_index, &query, &hits, &count), 0);
    for (size_t i = 0; i < count && !rank; i++)
        if (hits[i].id == id)
            rank = i + 1;
    free(hits);
    return rank;
}

static size_t s_rank(const char *q, int64_t id)
{
    return s_rank_as(q, id, true);
}

TestSuite(faq_learned, .init = s_setup, .fini = s_teardown);

Test(faq_learned, words_that_led_to_an_faq_find_it_for_a_close_query)
{
    faq_index_finish(s_index);
    cr_assert_neq(s_rank("電子ピアノを引き取ってほしい", 11), 1,
                  "the FAQ holds none of the words (in so small an index the feedback may still "
                  "bring it in)");
    cr_assert_eq(s_rank("住民票", 12), 1);
    /* a live index learns: two operators chose the bulky-refuse FAQ for these words */
    cr_assert_eq(faq_index_add_click(s_index, 11, "電子ピアノを捨てたい", 1), 0);
    cr_assert_eq(faq_index_add_click(s_index, 11, "電子ピアノを捨てたい", 1), 0);
    cr_assert_eq(s_rank("電子ピアノを引き取ってほしい", 11), 1);
    cr_assert_eq(s_rank("電子ﾋﾟｱﾉを捨てたい", 11), 1, "half-width kana as the same words");
    /* what was not learned stays as it was */
    cr_assert_eq(s_rank("住民票", 12), 1);
    cr_assert_eq(s_rank("住民票", 11), 0);
    cr_assert_eq(s_rank("犬の登録", 13), 1);
}

Test(faq_learned, learned_words_raise_the_faq_chosen_over_one_sharing_the_words)
{
    /* learned before the index is finished, as a rebuild loads them */
    cr_assert_eq(faq_index_add_click(s_index, 13, "ペットが増えたときの届け出", 3), 0);
    faq_index_finish(s_index);
    cr_assert_eq(s_rank("ペットの届け出", 13), 1);
}

Test(faq_learned, filters_still_apply_to_learned_faqs)
{
    faq_index_finish(s_index);
    cr_assert_eq(faq_index_add_click(s_index, 14, "グランドピアノを処分したい", 1), 0);
    cr_assert_eq(s_rank("グランドピアノを引き取って", 14), 0,
                 "a draft is not shown to operators however it was learned");
    cr_assert_eq(s_rank_as("グランドピアノを引き取って", 14, false), 1, "editors see it");
}

Test(faq_learned, bad_clicks_are_refused_and_change_nothing)
{
    faq_index_finish(s_index);
    cr_assert_eq(faq_index_add_click(s_index, 99, "電子ピアノ", 1), -ENOENT);
    cr_assert_eq(faq_index_add_click(s_index, -1, "電子ピアノ", 1), -ENOENT);
    cr_assert_eq(faq_index_add_click(s_index, 11, "\xff\xfe", 1), -EINVAL);
    cr_assert_eq(faq_index_add_click(s_index, 11, "、。", 1), -EINVAL, "no word");
    cr_assert_eq(faq_index_add_click(s_index, 11, "電子ピアノ", 0), -EINVAL);
    cr_assert_eq(faq_index_add_click(s_index, 11, NULL, 1), -EINVAL);
    cr_assert_neq(s_rank("電子ピアノ", 11), 1);
}

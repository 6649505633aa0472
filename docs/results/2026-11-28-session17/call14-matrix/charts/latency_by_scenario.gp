set terminal svg size 960,540 dynamic noenhanced background rgb 'white' font 'Helvetica,13'
set datafile separator '\t'
set datafile missing '?'
set border lc rgb '#333333'
set grid ytics lc rgb '#dddddd'
set key outside right top
set output '../latency_by_scenario.svg'
set title 'Median latency per scenario (error bars: 95 % CI of the mean; decode: per token)'
set style data histogram
set style histogram errorbars gap 1 lw 1
set style fill solid 0.85 border rgb '#333333'
set boxwidth 0.9
set logscale y
set ylabel 'milliseconds (log scale)'
set xtics rotate by -25 nomirror
set yrange [*:*]
plot 'latency_by_scenario.dat' using 2:3:4:xtic(1) title 'native cuda fp32', 'latency_by_scenario.dat' using 5:6:7 title 'native cuda tf32', 'latency_by_scenario.dat' using 8:9:10 title 'native cuda fp16', 'latency_by_scenario.dat' using 11:12:13 title 'native cuda bf16', 'latency_by_scenario.dat' using 14:15:16 title 'native cuda int8', 'latency_by_scenario.dat' using 17:18:19 title 'native cpu fp32', 'latency_by_scenario.dat' using 20:21:22 title 'native cpu int8', 'latency_by_scenario.dat' using 23:24:25 title 'onnxruntime cpu fp32', 'latency_by_scenario.dat' using 26:27:28 title 'onnxruntime cpu int8'
